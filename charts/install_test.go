package charts

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestHelmInstallUpgrade installs the chart with the real helm against the
// real API server (cert-manager off, so Helm generates the certificates),
// checks NOTES.txt and the generated Secret and caBundle, then upgrades and
// checks that the certificate is kept (the lookup in the templates), that
// a switch to the webhook's generator and then to cert-manager keeps the
// caBundle the configuration holds, and uninstalls.
func TestHelmInstallUpgrade(t *testing.T) {
	t.Parallel()
	helm := requireHelm(t)
	c := requireAPIServer(t)
	kubeconfig := apiServerKubeconfig(t)
	chart, err := ChartDir()
	if err != nil {
		t.Fatal(err)
	}
	const release, ns = "gen", "gen-system"
	// Nothing serves this release's webhook: keep it away from the pods
	// other tests create in the same API server.
	var excluded []string
	for _, n := range append(guardNamespaces.all(), routingNamespaces.all()...) {
		excluded = append(excluded, n.(string))
	}
	set := "certManager.enabled=false,generatedCerts.generator=helm,guard.enabled=false,webhook.failurePolicy=Ignore,webhook.excludedNamespaces={" + strings.Join(excluded, ",") + "}"
	// Not t.Context(): the uninstall runs in a cleanup, after it is done.
	ctx := context.WithoutCancel(t.Context())
	helmRun := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, helm, args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}

	installsWholeChart(t)
	out := helmRun("install", release, chart, "--namespace", ns, "--create-namespace", "--set", set)
	t.Cleanup(func() { helmRun("uninstall", release, "--namespace", ns) })
	for _, want := range []string{
		"kubectl label namespace <namespace> sandbox.io/inject=enabled",
		`sandbox.io/inject: "true"`,
		"Never injected: kube-system, kube-public, kube-node-lease, gen-system, guard-system",
		"create secret generic sandbox-runner-token \\\n" + `       --from-literal=token="sha256:$(printf %s "$TOKEN" | sha256sum`,
		"port-forward pod/<pod> 7080:sandbox-runner",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("NOTES lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "certificate/") {
		t.Errorf("NOTES mention cert-manager although it is off:\n%s", out)
	}

	read := func() (crt, ca, bundle, checksum string) {
		t.Helper()
		var dep appsv1.Deployment
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "gen-sandbox-injector"}, &dep); err != nil {
			t.Fatalf("getting the Deployment: %v", err)
		}
		var s corev1.Secret
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "gen-sandbox-injector-serving-cert"}, &s); err != nil {
			t.Fatalf("getting the serving Secret: %v", err)
		}
		var mwc admissionregistrationv1.MutatingWebhookConfiguration
		if err := c.Get(t.Context(), client.ObjectKey{Name: "gen-sandbox-injector"}, &mwc); err != nil {
			t.Fatalf("getting the MutatingWebhookConfiguration: %v", err)
		}
		return string(s.Data["tls.crt"]), string(s.Data["ca.crt"]), string(mwc.Webhooks[0].ClientConfig.CABundle), dep.Spec.Template.Annotations["checksum/serving-cert"]
	}
	crt1, ca1, bundle1, sum1 := read()
	if crt1 == "" || ca1 == "" || bundle1 != ca1 {
		t.Fatalf("after install: tls.crt %d bytes, ca.crt %d bytes, caBundle equal to ca.crt: %v", len(crt1), len(ca1), bundle1 == ca1)
	}

	helmRun("upgrade", release, chart, "--namespace", ns, "--set", set+",webhook.logLevel=debug")
	crt2, ca2, bundle2, sum2 := read()
	if crt2 != crt1 || ca2 != ca1 || bundle2 != bundle1 || sum2 != sum1 {
		t.Errorf("upgrade changed the certificate (tls.crt kept: %v, ca.crt kept: %v, caBundle kept: %v, pod checksum kept: %v)", crt2 == crt1, ca2 == ca1, bundle2 == bundle1, sum2 == sum1)
	}
	// A switch to the webhook's generator keeps the caBundle Helm wrote:
	// the old pods serve Helm's certificate until they are gone, and the
	// webhook adds its CA beside it (nothing serves the webhook here, so
	// what the upgrade left is what is seen).
	helmRun("upgrade", release, chart, "--namespace", ns, "--set", strings.Replace(set, "generatedCerts.generator=helm", "generatedCerts.generator=webhook", 1))
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := c.Get(t.Context(), client.ObjectKey{Name: "gen-sandbox-injector"}, &mwc); err != nil {
		t.Fatal(err)
	}
	for _, wh := range mwc.Webhooks {
		if string(wh.ClientConfig.CABundle) != bundle1 {
			t.Errorf("after the switch to the webhook's generator, webhook %s has caBundle of %d bytes, want Helm's kept (%d bytes): pods are refused until the old pods are gone", wh.Name, len(wh.ClientConfig.CABundle), len(bundle1))
		}
	}
	// A switch to cert-manager keeps it too, until cert-manager's CA
	// injector replaces it (no cert-manager runs here: as if its issuance
	// failed or had not happened yet). Removed, every opted-in pod would be
	// refused meanwhile, though the old pods serve on.
	helmRun("upgrade", release, chart, "--namespace", ns, "--set", strings.Replace(set, "certManager.enabled=false", "certManager.enabled=true", 1))
	if err := c.Get(t.Context(), client.ObjectKey{Name: "gen-sandbox-injector"}, &mwc); err != nil {
		t.Fatal(err)
	}
	if mwc.Annotations["cert-manager.io/inject-ca-from"] == "" {
		t.Errorf("after the switch to cert-manager, the configuration has no cert-manager.io/inject-ca-from annotation: %v", mwc.Annotations)
	}
	for _, wh := range mwc.Webhooks {
		if string(wh.ClientConfig.CABundle) != bundle1 {
			t.Errorf("after the switch to cert-manager, webhook %s has caBundle of %d bytes, want the one before kept (%d bytes) until cert-manager injects its CA", wh.Name, len(wh.ClientConfig.CABundle), len(bundle1))
		}
	}
}
