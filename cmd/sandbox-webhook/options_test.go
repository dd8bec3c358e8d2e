package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"sandbox.io/injector/certs"
	"sandbox.io/injector/claim/controller"
)

func TestFlagsAndEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(*options) string // "" when fine
		wantErr string
	}{
		{
			name: "defaults",
			args: []string{"--runner-image=r.test/runner:v1", "--release-namespace=sys"},
			want: func(o *options) string {
				return cmp.Diff(options{
					certDir: "/tmp/k8s-webhook-server/serving-certs", port: 9443, metricsBindAddress: ":8080",
					healthProbeAddress: ":8081", runnerImage: "r.test/runner:v1", runnerPort: 7080,
					tokenSecret: "sandbox-runner-token", excludedNamespaces: "kube-system,kube-public,kube-node-lease",
					entrypointTimeout: 2 * time.Second, injectionMethod: "auto", logLevel: "info",
					certMode: "files", certSecret: "sandbox-injector-serving-cert", webhookConfigName: "sandbox-injector",
					serviceName: "sandbox-injector", caLifetime: 87600 * time.Hour, certLifetime: 8760 * time.Hour,
					certSyncInterval: 5 * time.Second, caPropagationDelay: 10 * time.Second, caOverlap: 24 * time.Hour,
					isolation: isolationOptions{poolNetworkPolicies: true}, releaseNamespace: "sys",
					claims: true, claimKeySecret: "sandbox-injector-claim-key", claimConcurrency: controller.DefaultConcurrency, claimFinishedTTL: time.Hour, claimRelabelOnTake: true,
					claimColdTimeout: 3 * time.Minute, claimUnheldKeyGrace: controller.DefaultUnheldKeyGrace, leaderLeaseDuration: 10 * time.Second,
				}, *o, cmp.AllowUnexported(options{}, isolationOptions{}))
			},
		},
		{
			name: "environment sets flags",
			env:  map[string]string{"SANDBOX_RUNNER_IMAGE": "r.test/env:v2", "SANDBOX_RUNNER_PORT": "7090", "SANDBOX_RELEASE_NAMESPACE": "sys"},
			want: func(o *options) string {
				if o.runnerImage != "r.test/env:v2" || o.runnerPort != 7090 {
					return "environment ignored"
				}
				return ""
			},
		},
		{
			name: "command line wins over environment",
			args: []string{"--runner-image=r.test/flag:v3", "--release-namespace=sys"},
			env:  map[string]string{"SANDBOX_RUNNER_IMAGE": "r.test/env:v2"},
			want: func(o *options) string {
				if o.runnerImage != "r.test/flag:v3" {
					return "runner image " + o.runnerImage
				}
				return ""
			},
		},
		{name: "runner image required", wantErr: "--runner-image is required"},
		{name: "claims need the release namespace", args: []string{"--runner-image=x"}, wantErr: "--claims needs --release-namespace"},
		{name: "bad port", args: []string{"--runner-image=x", "--runner-port=0"}, wantErr: "--runner-port 0 is not in 1-65535"},
		{name: "bad timeout", args: []string{"--runner-image=x", "--entrypoint-timeout=1m"}, wantErr: "--entrypoint-timeout 1m0s"},
		{name: "negative unheld key grace", args: []string{"--runner-image=x", "--release-namespace=r", "--claim-unheld-key-grace=-1s"}, wantErr: "--claim-unheld-key-grace -1s is negative"},
		{name: "bad level", args: []string{"--runner-image=x", "--log-level=loud"}, wantErr: `log level "loud"`},
		{name: "bad environment value", env: map[string]string{"SANDBOX_PORT": "many"}, wantErr: "SANDBOX_PORT"},
		{
			name: "self-managed certificates",
			args: []string{"--runner-image=x", "--cert-mode=self", "--release-namespace=sys", "--cert-extra-sans=127.0.0.1, hook.example",
				"--ca-lifetime=2m", "--cert-lifetime=1m", "--cert-renew-before=20s", "--ca-overlap=30s"},
			env: map[string]string{"SANDBOX_CERT_SECRET": "env-secret", "SANDBOX_WEBHOOK_CONFIG_NAME": "env-hooks"},
			want: func(o *options) string {
				return cmp.Diff(certs.Config{
					Namespace: "sys", SecretName: "env-secret", WebhookConfigName: "env-hooks", ServiceName: "sandbox-injector",
					ExtraSANs: []string{"127.0.0.1", "hook.example"}, CALifetime: 2 * time.Minute, ServingLifetime: time.Minute,
					RenewBefore: 20 * time.Second, SyncInterval: 5 * time.Second, PropagationDelay: 10 * time.Second,
					CAOverlap: 30 * time.Second,
				}, o.certsConfig())
			},
		},
		{
			name: "pool isolation",
			args: []string{"--runner-image=x", "--claims=false", "--agent-service-account=sys/agent",
				`--runner-from=[{"podSelector":{"matchLabels":{"app":"hook"}},"namespaceSelector":{}},{"ipBlock":{"cidr":"10.0.0.0/8"}}]`},
			want: func(o *options) string {
				peers, err := o.isolation.peers()
				if err != nil || len(peers) != 2 || peers[0].PodSelector.MatchLabels["app"] != "hook" || peers[1].IPBlock.CIDR != "10.0.0.0/8" {
					return "runner-from parsed as " + o.isolation.runnerFrom
				}
				if a, err := o.isolation.agent(); err != nil || a.Namespace != "sys" || a.Name != "agent" {
					return "agent service account " + o.isolation.agentServiceAccount
				}
				return ""
			},
		},
		{name: "runner-from not JSON", args: []string{"--runner-image=x", "--runner-from=webhook pods"}, wantErr: "--runner-from: not a JSON list of NetworkPolicy peers"},
		{name: "runner-from misspelled", args: []string{"--runner-image=x", `--runner-from=[{"podselector":{}}]`}, wantErr: `unknown field "[0].podselector"`},
		{name: "runner-from empty peer", args: []string{"--runner-image=x", `--runner-from=[{}]`}, wantErr: "entry 0 names no podSelector"},
		{name: "agent service account without namespace", args: []string{"--runner-image=x", "--agent-service-account=agent"}, wantErr: `--agent-service-account "agent" is not namespace/name`},
		{name: "unknown cert mode", args: []string{"--runner-image=x", "--cert-mode=vault"}, wantErr: `--cert-mode "vault" is not files or self`},
		{name: "self mode needs the namespace", args: []string{"--runner-image=x", "--cert-mode=self"}, wantErr: "--cert-mode=self needs --release-namespace"},
		{name: "serving outlives CA", args: []string{"--runner-image=x", "--cert-mode=self", "--release-namespace=sys", "--ca-lifetime=1h", "--cert-lifetime=2h"}, wantErr: "at most the CA's 1h0m0s"},
		{name: "renew window too long", args: []string{"--runner-image=x", "--cert-mode=self", "--release-namespace=sys", "--cert-lifetime=1h", "--cert-renew-before=1h"}, wantErr: "renew-before 1h0m0s"},
		{name: "CA overlap shorter than a propagation", args: []string{"--runner-image=x", "--cert-mode=self", "--release-namespace=sys", "--ca-overlap=15s"}, wantErr: "ca overlap 15s must be at least"},
		{name: "registry allowance", args: []string{"--runner-image=x", "--claims=false", "--registry-allow-private", "--insecure-registries=10.0.0.1:5000"}, want: func(o *options) string {
			if !o.registryPrivate || o.insecureRegistries != "10.0.0.1:5000" {
				return "registry flags ignored"
			}
			return ""
		}},
		{name: "all problems at once", args: []string{"--runner-port=0", "--port=0"}, wantErr: "--port 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// t.Setenv forbids t.Parallel: the environment is process-wide.
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var got *options
			err := run(t.Context(), tc.args, func(_ context.Context, o *options, _ *slog.Logger) error {
				got = o
				return nil
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				if got != nil {
					t.Error("serve ran despite invalid flags")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.want(got); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestConfigFromOptions(t *testing.T) {
	t.Parallel()
	o := options{runnerImage: "r", runnerPort: 7081, tokenSecret: "tok", releaseNamespace: "sys",
		excludedNamespaces: " a, ,b ", entrypointTimeout: time.Second}
	cfg := o.config()
	if diff := cmp.Diff([]string{"a", "b"}, cfg.ExcludedNamespaces); diff != "" {
		t.Errorf("excluded namespaces (-want +got):\n%s", diff)
	}
	if cfg.RunnerPort != 7081 || cfg.TokenSecret != "tok" || cfg.ReleaseNamespace != "sys" || cfg.EntrypointTimeout != time.Second {
		t.Errorf("config %+v does not carry the options", cfg)
	}
}

// TestUnheldKeyGrace: --claim-unheld-key-grace=0 keeps the pods (a
// negative controller grace), not the controller's default.
func TestUnheldKeyGrace(t *testing.T) {
	t.Parallel()
	for flag, want := range map[time.Duration]time.Duration{0: -1, 30 * time.Second: 30 * time.Second} {
		if got := (&options{claimUnheldKeyGrace: flag}).unheldKeyGrace(); got != want {
			t.Errorf("--claim-unheld-key-grace=%s: controller grace %s, want %s", flag, got, want)
		}
	}
}

func TestSelftestFlags(t *testing.T) {
	t.Parallel()
	var got *selftestOptions
	fn := func(_ context.Context, o *selftestOptions, _ *slog.Logger) error { got = o; return nil }
	if err := runSelftest(t.Context(), []string{"--namespace=default", "--image=r.test/webhook:v1", "--timeout=30s"}, fn); err != nil {
		t.Fatal(err)
	}
	if got.namespace != "default" || got.image != "r.test/webhook:v1" || got.timeout != 30*time.Second {
		t.Errorf("options %+v", got)
	}
	err := runSelftest(t.Context(), []string{"--timeout=0s"}, fn)
	for _, want := range []string{"--namespace is required", "--image is required", "--timeout 0s must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
}
