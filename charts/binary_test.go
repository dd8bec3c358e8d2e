package charts

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/internal/testenv"
)

var webhookBinary struct {
	once sync.Once
	path string
	err  error
}

// buildWebhook builds cmd/sandbox-webhook once for the package's tests.
func buildWebhook(t *testing.T) string {
	t.Helper()
	webhookBinary.once.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			webhookBinary.err = err
			return
		}
		dir, err := os.MkdirTemp("", "sandbox-webhook-*")
		if err != nil {
			webhookBinary.err = err
			return
		}
		webhookBinary.path = filepath.Join(dir, "sandbox-webhook")
		cmd := exec.CommandContext(t.Context(), "go", "build", "-o", webhookBinary.path, "./cmd/sandbox-webhook")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			webhookBinary.err = fmt.Errorf("building cmd/sandbox-webhook: %w\n%s", err, out)
		}
	})
	if webhookBinary.err != nil {
		t.Fatal(webhookBinary.err)
	}
	return webhookBinary.path
}

// TestWebhookBinaryWithChart installs the chart on the real API server and
// runs the real sandbox-webhook with the exact arguments of the chart's
// Deployment (only the listening addresses moved to loopback ports and, for
// certificates from files, the Secret written to a directory), as the
// chart's ServiceAccount (impersonated), so with exactly the chart's RBAC.
// The webhook must become ready and inject an opted-in pod over TLS that
// verifies with the caBundle of the chart's webhook configuration for the
// Service's DNS name: the chart and the binary agree on flags, names,
// permissions and certificates.
func TestWebhookBinaryWithChart(t *testing.T) {
	t.Parallel()
	helm := requireHelm(t)
	c := requireAPIServer(t)
	binary := buildWebhook(t)
	chart, err := ChartDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, generator := range []string{"helm", "webhook"} {
		t.Run("certificates by "+generator, func(t *testing.T) {
			t.Parallel()
			release := "bin-" + generator
			ns := release + "-system"
			appNS := release + "-app"
			createNamespace(t, c, appNS, map[string]string{"sandbox.io/inject": "enabled"})
			dir := t.TempDir()
			// Not t.Context(): cleanups need these after the test is done. The
			// webhook process has its own, stopped before the uninstall.
			ctx := context.WithoutCancel(t.Context())
			procCtx, stop := context.WithCancel(ctx)
			t.Cleanup(stop)

			// Install. Nothing in the API server can reach this release's
			// Service: keep its webhooks away from other tests' pods.
			excluded := append(guardNamespaces.all(), routingNamespaces.all()...)
			values := map[string]any{
				"certManager":    map[string]any{"enabled": false},
				"generatedCerts": map[string]any{"generator": generator},
				"guard":          map[string]any{"enabled": false},
				"webhook":        map[string]any{"failurePolicy": "Ignore", "disableImageLookups": true, "excludedNamespaces": excluded},
				"runner":         map[string]any{"image": map[string]any{"registry": "127.0.0.1:5000"}},
			}
			if generator == "webhook" {
				// The self-test below has the API server call this webhook
				// at 127.0.0.1; its own certificate names that address too.
				values["webhook"].(map[string]any)["extraArgs"] = []any{"--cert-extra-sans=127.0.0.1"}
			}
			valuesFile := filepath.Join(dir, "values.json")
			data, _ := json.Marshal(values)
			if err := os.WriteFile(valuesFile, data, 0o600); err != nil {
				t.Fatal(err)
			}
			admin := filepath.Join(dir, "admin.kubeconfig")
			if err := os.WriteFile(admin, apiServer.env.KubeConfig, 0o600); err != nil {
				t.Fatal(err)
			}
			helmRun := func(args ...string) {
				t.Helper()
				cmd := exec.CommandContext(ctx, helm, args...)
				cmd.Env = append(os.Environ(), "KUBECONFIG="+admin, "HELM_CACHE_HOME="+dir, "HELM_CONFIG_HOME="+dir, "HELM_DATA_HOME="+dir)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
				}
			}
			installsWholeChart(t)
			helmRun("install", release, chart, "--namespace", ns, "--create-namespace", "--values", valuesFile)
			t.Cleanup(func() {
				helmRun("uninstall", release, "--namespace", ns)
				if generator == "webhook" {
					// The webhook's own Secret is not Helm's to delete.
					_ = c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: release + "-sandbox-injector-serving-cert"}})
				}
			})

			// The webhook's command line, from the live Deployment.
			fullname := release + "-sandbox-injector"
			var dep appsv1.Deployment
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: fullname}, &dep); err != nil {
				t.Fatal(err)
			}
			port, health, metrics := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
			var args []string
			for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
				name, _, _ := strings.Cut(a, "=")
				switch name {
				case "--port":
					a = "--port=" + strconv.Itoa(port)
				case "--health-probe-bind-address":
					a = fmt.Sprintf("%s=127.0.0.1:%d", name, health)
				case "--metrics-bind-address":
					a = fmt.Sprintf("%s=127.0.0.1:%d", name, metrics)
				case "--cert-dir":
					// The kubelet would mount the Secret here.
					certDir := filepath.Join(dir, "certs")
					var s corev1.Secret
					if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: fullname + "-serving-cert"}, &s); err != nil {
						t.Fatalf("getting the serving Secret: %v", err)
					}
					if err := os.MkdirAll(certDir, 0o700); err != nil {
						t.Fatal(err)
					}
					for _, k := range []string{"tls.crt", "tls.key"} {
						if err := os.WriteFile(filepath.Join(certDir, k), s.Data[k], 0o600); err != nil {
							t.Fatal(err)
						}
					}
					a = "--cert-dir=" + certDir
				}
				args = append(args, a)
			}

			// Run it as the chart's ServiceAccount.
			cfg, err := clientcmd.Load(apiServer.env.KubeConfig)
			if err != nil {
				t.Fatal(err)
			}
			for _, user := range cfg.AuthInfos {
				user.Impersonate = "system:serviceaccount:" + ns + ":" + dep.Spec.Template.Spec.ServiceAccountName
				user.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
			}
			asSA := filepath.Join(dir, "serviceaccount.kubeconfig")
			if err := clientcmd.WriteToFile(*cfg, asSA); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			run := exec.CommandContext(procCtx, binary, append(args, "--kubeconfig="+asSA)...)
			run.Stdout, run.Stderr = &logs, &logs
			run.Cancel = func() error { return run.Process.Signal(syscall.SIGTERM) }
			run.WaitDelay = 30 * time.Second
			if err := run.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			var runErr error
			go func() { runErr = run.Wait(); close(exited) }()
			t.Cleanup(func() {
				stop()
				<-exited
				if t.Failed() {
					t.Logf("sandbox-webhook %s\n%s", strings.Join(args, " "), logs.String())
				}
			})

			eventuallyWithin(t, "webhook ready", 2*time.Minute, func() error {
				select {
				case <-exited:
					t.Fatalf("sandbox-webhook exited: %v", runErr)
				default:
				}
				return httpOK(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/readyz", health))
			})
			if err := httpOK(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics)); err != nil {
				t.Errorf("metrics: %v", err)
			}

			// Admit an opted-in pod the way the API server would: TLS
			// verified by the configuration's caBundle for the Service name.
			var mwc admissionregistrationv1.MutatingWebhookConfiguration
			if err := c.Get(ctx, client.ObjectKey{Name: fullname}, &mwc); err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(mwc.Webhooks[0].ClientConfig.CABundle) {
				t.Fatalf("caBundle of %s holds no certificate", fullname)
			}
			svc := mwc.Webhooks[0].ClientConfig.Service
			httpsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
				RootCAs: roots, ServerName: svc.Name + "." + svc.Namespace + ".svc", MinVersion: tls.VersionTLS12,
			}}}
			resp := admit(t, httpsClient, fmt.Sprintf("https://127.0.0.1:%d%s", port, *svc.Path),
				testPod(appNS, "app", map[string]string{"sandbox.io/inject": "true"}, nil))
			if !resp.Allowed || resp.PatchType == nil {
				t.Fatalf("response %+v, want an allowed pod with a patch", resp)
			}
			for _, want := range []string{`"sandbox-runner-install"`, `"127.0.0.1:5000/sandbox-runner:0.1.0"`} {
				if !bytes.Contains(resp.Patch, []byte(want)) {
					t.Errorf("patch lacks %s:\n%s", want, resp.Patch)
				}
			}
			if generator == "webhook" {
				// helm test: the chart's self-test, through the API server.
				checkSelftest(t, ctx, c, binary, Release{Name: release, Namespace: ns, Values: values}, appNS, port)
			}
		})
	}
}

func httpOK(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}

// admit sends pod to a mutating webhook as a CREATE AdmissionReview.
func admit(t *testing.T, c *http.Client, url string, pod *corev1.Pod) *admissionv1.AdmissionResponse {
	t.Helper()
	pod.APIVersion, pod.Kind = "v1", "Pod"
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("test-" + pod.Name),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: pod.Namespace,
			Name:      pod.Name,
			Operation: admissionv1.Create,
			Object:    runtimeRaw(raw),
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Response == nil {
		t.Fatalf("POST %s: %s, decoding the review: %v", url, resp.Status, err)
	}
	return out.Response
}

func runtimeRaw(b []byte) runtime.RawExtension { return runtime.RawExtension{Raw: b} }
