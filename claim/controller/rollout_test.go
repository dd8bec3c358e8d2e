package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim/controller"
	"sandbox.io/injector/internal/claimtest"
	"sandbox.io/injector/internal/testenv"
)

const (
	oldRunner = "images.test/sandbox-runner:v1"
	newRunner = "images.test/sandbox-runner:v2"
)

// warmPodOf makes a Ready warm pod of p on node whose sandbox.io/status
// names image as its runner (the real runner binary stands behind it,
// whatever image it names), as claimtest.WarmPod does.
func warmPodOf(e *claimtest.Env, p *v1alpha1.SandboxPool, node, image string) *corev1.Pod {
	e.T.Helper()
	return e.WarmPodUnder(p, node, e.Keys.Keys().Current, func(pod *corev1.Pod) {
		pod.Annotations[v1alpha1.AnnotationStatus] = fmt.Sprintf(`{"state":"injected","runnerImage":%q}`, image)
	})
}

// TestClaimPrefersCurrentRunner: while the node agents replace warm pods
// of an older runner, claims take the Ready pods of the current runner
// first, and fall back to an older runner (of the same claim protocol: it
// works) only when no current one is free.
func TestClaimPrefersCurrentRunner(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{Controller: controller.Options{RunnerImage: newRunner}})
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "mixed", 6)
	current := map[string]bool{}
	for i := range 6 {
		if i%3 == 0 {
			current[warmPodOf(e, p, "node-a", newRunner).Name] = true
		} else {
			warmPodOf(e, p, "node-a", oldRunner)
		}
	}
	for i := range 3 {
		sbc := newClaim(ns, "mixed", fmt.Sprintf("prefer-token-%d-0123456789abcdef", i), func(c *v1alpha1.SandboxClaim) {
			c.Spec.ColdStart = v1alpha1.ColdStartNever
		})
		create(t, e, sbc)
		got := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimBound, v1alpha1.ClaimFailed)
		if got.Status.Phase != v1alpha1.ClaimBound {
			t.Fatalf("claim %d: %s %+v", i, got.Status.Phase, got.Status.Conditions)
		}
		switch {
		case i < 2 && !current[got.Status.PodName]:
			t.Errorf("claim %d took %s, of the older runner, while a current one was Ready", i, got.Status.PodName)
		case i == 2 && current[got.Status.PodName]:
			t.Errorf("claim %d took current pod %s, but both were taken already", i, got.Status.PodName)
		}
	}
}

// TestClaimRunnerOfAnotherProtocol plays a controller of a newer release
// (claim protocol 3) against the real runner (protocol 2) behind warm pods
// of the older runner image and of the current one. The older runner's
// refusal does not fail the claim: the pod is let go (its node agent
// replaces it) and the claim waits, Pending with reason RunnerOutdated and
// a message that says what is happening, for a current runner. When
// current runners refuse too (a webhook injecting a runner of another
// protocol than its controller's), the claim fails after RunnerAttempts
// pods with a message that says what to install.
func TestClaimRunnerOfAnotherProtocol(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{Controller: controller.WithClaimProtocol(controller.Options{RunnerImage: newRunner}, 3)})
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "rolling", 3)
	old := warmPodOf(e, p, "node-a", oldRunner)

	sbc := newClaim(ns, "rolling", "protocol-token-0123456789abcdef", func(c *v1alpha1.SandboxClaim) {
		c.Spec.ColdStart = v1alpha1.ColdStartNever
	})
	create(t, e, sbc)
	var got v1alpha1.SandboxClaim
	testenv.Eventually(t, bindTimeout, "the claim Pending for an outdated runner", func() error {
		if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(sbc), &got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBound)
		if got.Status.Phase != v1alpha1.ClaimPending || c == nil || c.Reason != v1alpha1.ReasonRunnerOutdated {
			return fmt.Errorf("phase %s, condition %+v", got.Status.Phase, c)
		}
		for _, w := range []string{"the runner of pod " + old.Name, oldRunner, "speaks claim protocol 2; this controller needs 3",
			"the warm pods are being replaced with the new runner (" + newRunner + "); retrying", "older than the claim controller"} {
			if !strings.Contains(c.Message, w) {
				return fmt.Errorf("message %q does not say %q", c.Message, w)
			}
		}
		return nil
	})
	testenv.Eventually(t, bindTimeout, "the outdated pod let go", func() error {
		var pod corev1.Pod
		err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(old), &pod)
		if err == nil && pod.DeletionTimestamp == nil {
			return fmt.Errorf("pod %s still there: %v", pod.Name, pod.Labels)
		}
		return client.IgnoreNotFound(err)
	})

	// Current runners of another protocol: the claim takes them (it kept
	// retrying), and fails once RunnerAttempts of them refused.
	for range 3 {
		warmPodOf(e, p, "node-a", newRunner)
	}
	failed := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimFailed)
	c := meta.FindStatusCondition(failed.Status.Conditions, v1alpha1.ConditionBound)
	if c == nil || c.Reason != v1alpha1.ReasonRunnerRefused {
		t.Fatalf("condition %+v, want %s", c, v1alpha1.ReasonRunnerRefused)
	}
	for _, w := range []string{"speaks claim protocol 2; this controller needs 3", "install the webhook and runner images of one release"} {
		if !strings.Contains(c.Message, w) {
			t.Errorf("message %q does not say %q", c.Message, w)
		}
	}
}

// TestClaimOlderControllerRefused plays a controller of an older release
// (claim protocol 1) against the real runner: the runner refuses, and the
// claim's failure carries the runner's message, which says to finish the
// chart upgrade.
func TestClaimOlderControllerRefused(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{Controller: controller.WithClaimProtocol(controller.Options{RunnerImage: newRunner, RunnerAttempts: 1}, 1)})
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "older", 1)
	warmPodOf(e, p, "node-a", newRunner)
	sbc := newClaim(ns, "older", "older-token-0123456789abcdef", func(c *v1alpha1.SandboxClaim) {
		c.Spec.ColdStart = v1alpha1.ColdStartNever
	})
	create(t, e, sbc)
	failed := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimFailed)
	c := meta.FindStatusCondition(failed.Status.Conditions, v1alpha1.ConditionBound)
	if c == nil || c.Reason != v1alpha1.ReasonRunnerRefused {
		t.Fatalf("condition %+v, want %s", c, v1alpha1.ReasonRunnerRefused)
	}
	for _, w := range []string{"claim protocol 1 is not supported", "the claim controller (sandbox-webhook) is older than the runner", "helm upgrade"} {
		if !strings.Contains(c.Message, w) {
			t.Errorf("message %q does not say %q", c.Message, w)
		}
	}
}
