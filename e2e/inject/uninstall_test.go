package inject

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestUpgradeThenUninstall runs last (files run in name order): a helm
// upgrade keeps injecting, and an uninstall leaves no webhook
// configuration or policy behind that would block pods.
func TestUpgradeThenUninstall(t *testing.T) {
	x := requireE2E(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	args := append([]string{"upgrade", release, filepath.Join(x.root, "charts", "sandbox-injector")}, x.helmArgs()...)
	args = append(args, "--set", "webhook.logLevel=debug")
	if err := x.helmCmd(ctx, args...); err != nil {
		t.Fatal(err)
	}
	if err := x.waitForWebhook(ctx); err != nil {
		t.Fatalf("after upgrade: %v", err)
	}
	if err := x.helmCmd(ctx, "uninstall", release, "--namespace", releaseNS, "--wait"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Leave the cluster as the suite found it: installed.
		if err := x.install(); err != nil {
			t.Errorf("reinstalling: %v", err)
		}
	})
	mwcs, err := x.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mwcs.Items {
		if strings.Contains(m.Name, "sandbox") {
			t.Errorf("webhook configuration %s left behind", m.Name)
		}
	}
	vaps, err := x.kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range vaps.Items {
		if strings.Contains(p.Name, "sandbox") {
			t.Errorf("admission policy %s left behind", p.Name)
		}
	}
	// The API server's admission caches follow deletions within moments.
	ns := x.namespace(t, "after", nil)
	var last error
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, last = x.kube.CoreV1().Pods(ns).Create(ctx,
			busyboxPod(x, ns, "optin", map[string]string{"sandbox.io/inject": "true"}),
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return last == nil, nil
	})
	if err != nil {
		t.Errorf("an opted-in pod is still refused 30s after uninstall: %v", last)
	}
}
