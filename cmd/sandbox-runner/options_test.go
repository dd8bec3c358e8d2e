package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"sandbox.io/injector/runner"
	"sandbox.io/injector/runner/api"
)

func TestRunFlagsAndEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    runner.Config
		wantErr string
	}{
		{
			name: "defaults",
			args: []string{"run"},
			want: runner.Config{Mode: "server", Listen: ":7080", GracePeriod: 10 * time.Second, RestartPolicy: "Never"},
		},
		{
			name: "the webhook's command line",
			args: []string{"run", "--mode=server", "--listen=:7080", "--token-file=/t/token", "--", "nginx", "-g", "daemon off;"},
			want: runner.Config{Mode: "server", Listen: ":7080", TokenFile: "/t/token", GracePeriod: 10 * time.Second, Command: []string{"nginx", "-g", "daemon off;"}},
		},
		{
			name: "flags after -- belong to the command",
			args: []string{"run", "--mode", "wrap", "--", "sh", "-c", "--mode=x"},
			want: runner.Config{Mode: "wrap", Listen: ":7080", GracePeriod: 10 * time.Second, Command: []string{"sh", "-c", "--mode=x"}},
		},
		{
			name: "environment",
			args: []string{"run", "true"},
			env: map[string]string{
				"SANDBOX_MODE": "wrap", "SANDBOX_LISTEN": "127.0.0.1:9", "SANDBOX_TOKEN_FILE": "/tok",
				"SANDBOX_WORKDIR": "/w", "SANDBOX_GRACE_PERIOD": "30", "SANDBOX_MAX_CONCURRENT": "3",
			},
			want: runner.Config{Mode: "wrap", Listen: "127.0.0.1:9", TokenFile: "/tok", Workdir: "/w", GracePeriod: 30 * time.Second, MaxConcurrent: 3, Command: []string{"true"}},
		},
		{
			name: "flag wins over environment",
			args: []string{"run", "--mode=server", "--grace-period=1m", "--workdir=/flag"},
			env:  map[string]string{"SANDBOX_MODE": "wrap", "SANDBOX_GRACE_PERIOD": "5s", "SANDBOX_WORKDIR": "/env"},
			want: runner.Config{Mode: "server", Listen: ":7080", Workdir: "/flag", GracePeriod: time.Minute},
		},
		{
			name: "restart policy and liveness probe",
			args: []string{"run", "--restart-policy=Always", `--liveness-probe={"exec":{"command":["cat","/tmp/health"]},"periodSeconds":2}`, "--", "sleep", "1000"},
			want: runner.Config{Mode: "server", Listen: ":7080", GracePeriod: 10 * time.Second, RestartPolicy: "Always", Command: []string{"sleep", "1000"},
				LivenessProbe: &api.Probe{Exec: &api.ExecAction{Command: []string{"cat", "/tmp/health"}}, TimeoutSeconds: 1, PeriodSeconds: 2, SuccessThreshold: 1, FailureThreshold: 3}},
		},
		{
			name: "restart policy and probe from the environment",
			args: []string{"run", "app"},
			env:  map[string]string{"SANDBOX_RESTART_POLICY": "OnFailure", "SANDBOX_LIVENESS_PROBE": `{"tcpSocket":{"port":8080}}`},
			want: runner.Config{Mode: "server", Listen: ":7080", GracePeriod: 10 * time.Second, RestartPolicy: "OnFailure", Command: []string{"app"},
				LivenessProbe: &api.Probe{TCPSocket: &api.TCPSocketAction{Port: api.Port{Number: 8080}}, TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}},
		},
		{name: "bad restart policy", args: []string{"run", "--restart-policy=always", "app"}, wantErr: `--restart-policy "always" is not one of Always, OnFailure, Never`},
		{name: "restart policy in wrap mode", args: []string{"run", "--mode=wrap", "--restart-policy=OnFailure", "app"}, wantErr: "--restart-policy=OnFailure needs --mode=server"},
		{name: "malformed probe", args: []string{"run", "--liveness-probe={\"exec\":", "app"}, wantErr: "--liveness-probe: decoding probe"},
		{name: "invalid probe", args: []string{"run", `--liveness-probe={"httpGet":{"port":0}}`, "app"}, wantErr: "--liveness-probe: validating probe: httpGet.port: Invalid value: 0"},
		{name: "grpc probe", args: []string{"run", `--liveness-probe={"grpc":{"port":9000}}`, "app"}, wantErr: "grpc probes are not supported by the runner"},
		{name: "probe without a command", args: []string{"run", `--liveness-probe={"tcpSocket":{"port":80}}`}, wantErr: "--liveness-probe needs a command"},
		{
			name: "upload timeouts",
			args: []string{"run", "--upload-timeout=2h"},
			env:  map[string]string{"SANDBOX_UPLOAD_IDLE_TIMEOUT": "30"},
			want: runner.Config{Mode: "server", Listen: ":7080", GracePeriod: 10 * time.Second, UploadTimeout: 2 * time.Hour, UploadIdleTimeout: 30 * time.Second},
		},
		{name: "upload timeout over the bound", args: []string{"run", "--upload-timeout=25h"}, wantErr: "--upload-timeout 25h0m0s must be positive and at most 24h"},
		{name: "upload idle timeout over the upload timeout", args: []string{"run", "--upload-timeout=1m", "--upload-idle-timeout=2m"}, wantErr: "--upload-idle-timeout 2m0s"},
		{name: "bad mode", args: []string{"run", "--mode=daemon"}, wantErr: `--mode "daemon" is not one of server, wrap`},
		{name: "wrap needs a command", args: []string{"run", "--mode=wrap"}, wantErr: "needs a command"},
		{name: "bad grace period in env", args: []string{"run"}, env: map[string]string{"SANDBOX_GRACE_PERIOD": "soon"}, wantErr: "SANDBOX_GRACE_PERIOD"},
		{
			name: "every flag has its variable",
			args: []string{"run", "app"},
			env: map[string]string{
				"SANDBOX_INSECURE_LOOPBACK": "true", "SANDBOX_CLAIM_VERIFIER": "sha256:" + strings.Repeat("ab", 32), "SANDBOX_LOG_LEVEL": "debug",
				"SANDBOX_MAX_OUTPUT_BYTES": "10", "SANDBOX_MAX_UPLOAD_BYTES": "20", "SANDBOX_UPLOAD_TIMEOUT": "2h",
			},
			want: runner.Config{Mode: "server", Listen: ":7080", GracePeriod: 10 * time.Second, InsecureLoopback: true, ClaimVerifier: "sha256:" + strings.Repeat("ab", 32),
				MaxOutputBytes: 10, MaxUploadBytes: 20, UploadTimeout: 2 * time.Hour, Command: []string{"app"}},
		},
		{
			name: "flag wins over environment, for every kind of flag",
			args: []string{"run", "--insecure-loopback=false", "--max-concurrent=5", "--listen=:9", "--log-level=error"},
			env:  map[string]string{"SANDBOX_INSECURE_LOOPBACK": "true", "SANDBOX_MAX_CONCURRENT": "3", "SANDBOX_LISTEN": ":8", "SANDBOX_LOG_LEVEL": "loud"},
			want: runner.Config{Mode: "server", Listen: ":9", GracePeriod: 10 * time.Second, MaxConcurrent: 5},
		},
		{name: "bad number in env", args: []string{"run"}, env: map[string]string{"SANDBOX_MAX_CONCURRENT": "many"}, wantErr: `environment variable SANDBOX_MAX_CONCURRENT="many"`},
		{name: "bad bool in env", args: []string{"run"}, env: map[string]string{"SANDBOX_INSECURE_LOOPBACK": "yes"}, wantErr: `environment variable SANDBOX_INSECURE_LOOPBACK="yes"`},
		{name: "empty number in env", args: []string{"run"}, env: map[string]string{"SANDBOX_MAX_UPLOAD_BYTES": ""}, wantErr: `environment variable SANDBOX_MAX_UPLOAD_BYTES=""`},
		{name: "bad log level in env", args: []string{"run"}, env: map[string]string{"SANDBOX_LOG_LEVEL": "loud"}, wantErr: `--log-level "loud"`},
		{name: "bad log level", args: []string{"run", "--log-level=loud"}, wantErr: "--log-level"},
		{name: "unknown flag", args: []string{"run", "--port=1"}, wantErr: "flag provided but not defined"},
		{name: "unknown subcommand", args: []string{"serve"}, wantErr: `unknown subcommand "serve"`},
		{name: "install without dest", args: []string{"install"}, wantErr: "usage: sandbox-runner install DEST"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got *runner.Config
			fake := func(_ context.Context, cfg runner.Config) error { got = &cfg; return nil }
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			var stderr bytes.Buffer
			err := runWith(t.Context(), tc.args, &bytes.Buffer{}, &stderr, env, fake)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("run was not called")
			}
			if !got.Reap || got.Logger == nil {
				t.Errorf("the binary must reap (got %v) and log (got %v)", got.Reap, got.Logger)
			}
			// Limits not under test are their defaults; compare the rest.
			if tc.want.MaxConcurrent == 0 {
				tc.want.MaxConcurrent = 64
			}
			if tc.want.MaxOutputBytes == 0 {
				tc.want.MaxOutputBytes = 1 << 20
			}
			if tc.want.MaxUploadBytes == 0 {
				tc.want.MaxUploadBytes = 4 << 30
			}
			if tc.want.RestartPolicy == "" {
				tc.want.RestartPolicy = "Never"
			}
			if tc.want.UploadTimeout == 0 {
				tc.want.UploadTimeout = runner.DefaultUploadTimeout
			}
			if tc.want.UploadIdleTimeout == 0 {
				tc.want.UploadIdleTimeout = runner.DefaultUploadIdleTimeout
			}
			opts := cmp.Options{cmpopts.IgnoreFields(runner.Config{}, "Logger", "Reap", "Version"), cmpopts.IgnoreUnexported(runner.Config{}), cmpopts.EquateEmpty()}
			if diff := cmp.Diff(tc.want, *got, opts); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLogLevel checks that the level validate parsed is the logger's.
func TestLogLevel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args  []string
		env   map[string]string
		debug bool
	}{
		{args: []string{"run"}},
		{args: []string{"run", "--log-level=debug"}, debug: true},
		{args: []string{"run"}, env: map[string]string{"SANDBOX_LOG_LEVEL": "DEBUG"}, debug: true},
	} {
		var got *runner.Config
		fake := func(_ context.Context, cfg runner.Config) error { got = &cfg; return nil }
		env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
		if err := runWith(t.Context(), tc.args, &bytes.Buffer{}, &bytes.Buffer{}, env, fake); err != nil {
			t.Fatal(err)
		}
		if d := got.Logger.Enabled(t.Context(), slog.LevelDebug); d != tc.debug {
			t.Errorf("%v %v: debug enabled %v, want %v", tc.args, tc.env, d, tc.debug)
		}
	}
}

// TestHelpNamesVariables checks that every flag's help names its variable.
func TestHelpNamesVariables(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := runWith(t.Context(), []string{"run", "--help"}, &bytes.Buffer{}, &stderr, func(string) (string, bool) { return "", false }, nil)
	if err == nil {
		t.Fatal("--help ran the runner")
	}
	for _, want := range []string{"(env SANDBOX_MODE)", "(env SANDBOX_INSECURE_LOOPBACK)", "(env SANDBOX_UPLOAD_IDLE_TIMEOUT)", `(default ":7080")`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %s:\n%s", want, stderr.String())
		}
	}
}
