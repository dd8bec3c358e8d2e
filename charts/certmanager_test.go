package charts

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestCertManagerIssuesServingCertificate installs the chart in its default
// certificate mode on the real API server, with cert-manager's own
// controllers and CA injector running (certmanager-harness, built from
// cert-manager's packages), and checks the whole chain: the self-signed
// Issuer signs the CA, the CA Issuer signs a serving certificate for the
// Service's DNS names into the Secret the webhook mounts, the Certificate is
// Ready, and the CA reaches the caBundle of both webhooks.
func TestCertManagerIssuesServingCertificate(t *testing.T) {
	t.Parallel()
	helm := requireHelm(t)
	c := requireAPIServer(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfig := apiServerKubeconfig(t)

	// Build the harness (a module of its own; the first build takes minutes
	// on a small machine, later ones come from the build cache).
	harness := filepath.Join(dir, "certmanager-harness")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", harness, ".")
	build.Dir = filepath.Join(root, "charts", "certmanager-harness")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building certmanager-harness: %v\n%s", err, out)
	}

	// Not t.Context(): the cleanups below need it after the test is done.
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	var logs bytes.Buffer
	run := exec.CommandContext(ctx, harness, "--kubeconfig", kubeconfig)
	run.Stdout, run.Stderr = &logs, &logs
	run.Cancel = func() error { return run.Process.Signal(syscall.SIGTERM) }
	run.WaitDelay = 30 * time.Second
	if err := run.Start(); err != nil {
		t.Fatalf("starting certmanager-harness: %v", err)
	}
	exited := make(chan struct{})
	var runErr error
	go func() { runErr = run.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("certmanager-harness output:\n%s", logs.String())
		}
	})
	running := func() error {
		select {
		case <-exited:
			return fmt.Errorf("certmanager-harness exited: %w", runErr)
		default:
			return nil
		}
	}

	const release, ns = "cm", "cm-system"
	var excluded []string
	for _, n := range append(guardNamespaces.all(), routingNamespaces.all()...) {
		excluded = append(excluded, n.(string))
	}
	// Nothing serves this release's webhook: keep it away from the pods
	// other tests create in the same API server.
	set := "guard.enabled=false,webhook.failurePolicy=Ignore,webhook.excludedNamespaces={" + strings.Join(excluded, ",") + "}"
	helmRun := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, helm, args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	installsWholeChart(t)
	helmRun("install", release, filepath.Join(root, "charts", ChartName), "--namespace", ns, "--create-namespace", "--set", set)
	t.Cleanup(func() { helmRun("uninstall", release, "--namespace", ns) })

	secretName := "cm-sandbox-injector-serving-cert"
	var secret corev1.Secret
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	eventuallyWithin(t, "serving certificate issued and CA injected", 3*time.Minute, func() error {
		if err := running(); err != nil {
			t.Fatal(err)
		}
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: secretName}, &secret); err != nil {
			return err
		}
		if len(secret.Data["tls.crt"]) == 0 || len(secret.Data["ca.crt"]) == 0 {
			return fmt.Errorf("secret %s has no tls.crt or ca.crt yet", secretName)
		}
		cert := &unstructured.Unstructured{}
		cert.SetGroupVersionKind(schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"})
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "cm-sandbox-injector-serving"}, cert); err != nil {
			return err
		}
		conditions, _, _ := unstructured.NestedSlice(cert.Object, "status", "conditions")
		ready := false
		for _, cond := range conditions {
			m, _ := cond.(map[string]any)
			ready = ready || (m["type"] == "Ready" && m["status"] == "True")
		}
		if !ready {
			return fmt.Errorf("certificate not Ready: %v", conditions)
		}
		if err := c.Get(t.Context(), client.ObjectKey{Name: "cm-sandbox-injector"}, &mwc); err != nil {
			return err
		}
		for _, wh := range mwc.Webhooks {
			if !bytes.Equal(wh.ClientConfig.CABundle, secret.Data["ca.crt"]) {
				return fmt.Errorf("webhook %s caBundle (%d bytes) is not yet the issued CA", wh.Name, len(wh.ClientConfig.CABundle))
			}
		}
		return nil
	})

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(secret.Data["ca.crt"]) {
		t.Fatal("ca.crt holds no certificate")
	}
	block, _ := pem.Decode(secret.Data["tls.crt"])
	if block == nil {
		t.Fatal("tls.crt holds no PEM block")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cm-sandbox-injector.cm-system.svc", "cm-sandbox-injector.cm-system.svc.cluster.local"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
}
