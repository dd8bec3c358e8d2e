package inject

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"sandbox.io/injector/api/v1alpha1"
)

// scaleWebhook sets the webhook Deployment's replicas and waits until that
// many are available.
// ctx is separate from t so that cleanups, which run after t's context
// ends, can scale back.
func (x *env) scaleWebhook(ctx context.Context, t *testing.T, replicas int32) {
	t.Helper()
	deploys := x.kube.AppsV1().Deployments(releaseNS)
	patch := []byte(`{"spec":{"replicas":` + itoa(int(replicas)) + `}}`)
	if _, err := deploys.Patch(ctx, release, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("scaling the webhook to %d: %v", replicas, err)
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := deploys.Get(ctx, release, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.AvailableReplicas == replicas && d.Status.Replicas == replicas, nil
	})
	if err != nil {
		t.Fatalf("waiting for %d webhook replicas: %v", replicas, err)
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestWebhookDownRefusesOnlyOptedInPods(t *testing.T) {
	x := requireE2E(t)
	ns := x.namespace(t, "down", nil)
	x.scaleWebhook(t.Context(), t, 0)
	t.Cleanup(func() {
		x.scaleWebhook(context.Background(), t, 1)
		if err := x.waitForWebhook(context.Background()); err != nil {
			t.Errorf("injection did not resume: %v", err)
		}
	})
	// Wait until the Service has no endpoint left (the pod may still be
	// terminating for a moment).
	var err error
	start := time.Now()
	_ = wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		start = time.Now()
		_, err = x.kube.CoreV1().Pods(ns).Create(ctx,
			busyboxPod(x, ns, "optin", map[string]string{v1alpha1.AnnotationInject: "true"}),
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil, nil
	})
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("an opted-in pod was admitted with no webhook replica")
	}
	if !strings.Contains(err.Error(), "sandbox.io") {
		t.Errorf("refusal %q does not name the webhook", err)
	}
	if elapsed > 10*time.Second {
		t.Errorf("refusal took %s; the webhook timeout should bound it", elapsed)
	}
	t.Logf("opted-in pod refused in %s: %v", elapsed.Round(time.Millisecond), err)
	if _, err := x.kube.CoreV1().Pods(ns).Create(t.Context(), busyboxPod(x, ns, "plain", nil), metav1.CreateOptions{}); err != nil {
		t.Errorf("a pod that did not opt in was refused while the webhook is down: %v", err)
	}
}

func TestGuardRefusesUninjectedOptedInPod(t *testing.T) {
	x := requireE2E(t)
	ns := x.namespace(t, "guard", nil)
	// A webhook that fails open lets the pod through unmutated: the guard
	// policy must catch it.
	mwcs := x.kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	list, err := mwcs.List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var name string
	for _, m := range list.Items {
		if strings.HasPrefix(m.Name, release) {
			name = m.Name
		}
	}
	if name == "" {
		t.Fatal("the chart's MutatingWebhookConfiguration is not installed")
	}
	orig, err := mwcs.Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	open := orig.DeepCopy()
	for i := range open.Webhooks {
		open.Webhooks[i].FailurePolicy = ptr.To(admissionIgnore)
	}
	if _, err := mwcs.Update(t.Context(), open, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	x.scaleWebhook(t.Context(), t, 0)
	t.Cleanup(func() {
		cur, err := mwcs.Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			cur.Webhooks = orig.Webhooks
			_, err = mwcs.Update(context.Background(), cur, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Errorf("restoring the webhook configuration: %v", err)
		}
		x.scaleWebhook(context.Background(), t, 1)
		if err := x.waitForWebhook(context.Background()); err != nil {
			t.Errorf("injection did not resume: %v", err)
		}
	})
	var last error
	err = wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, last = x.kube.CoreV1().Pods(ns).Create(ctx,
			busyboxPod(x, ns, "sneaky", map[string]string{v1alpha1.AnnotationInject: "true"}),
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return last != nil && strings.Contains(last.Error(), "ValidatingAdmissionPolicy"), nil
	})
	if err != nil {
		t.Fatalf("the guard policy did not refuse an opted-in pod without the runner: last answer %v", last)
	}
	t.Logf("guard refused: %v", last)
}

const admissionIgnore = admissionregistrationv1.Ignore
