package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim/controller"
	"sandbox.io/injector/internal/claimkey"
	"sandbox.io/injector/internal/claimtest"
	"sandbox.io/injector/internal/testenv"
)

// TestClaimKeyRotation: the controller follows its key ring as it
// switches. After a rotation, warm pods injected under the previous key
// and under the new one both bind; a pod injected under a key the
// controller does not hold is never handed a credential (it stays, is not
// counted Ready, and a claim that finds nothing else fails saying why);
// dropping the previous key takes its pods out of the pool's Ready count
// at once, with no pod event to prompt it.
func TestClaimKeyRotation(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{NoController: true})
	oldKey, newKey, foreign := claimkey.Key("old-claim-key-0123456789abcdef"), claimkey.Key("new-claim-key-0123456789abcdef"), claimkey.Key("foreign-key-0123456789abcdef")
	keys := claimkey.NewRing(claimkey.Keys{Current: oldKey})
	e.StartController(controller.Options{Keys: keys}, "")
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "python", 4)
	before := e.WarmPodUnder(p, "node-a", oldKey, nil)
	e.WaitPoolReady(p, 1)

	keys.Set(claimkey.Keys{Current: newKey, Previous: oldKey})
	after := e.WarmPodUnder(p, "node-a", newKey, nil)
	stranger := e.WarmPodUnder(p, "node-a", foreign, nil)
	e.WaitPoolReady(p, 2)
	waitPoolMessage(t, e, p, "1 more were injected under a claim key the claim controller does not hold")

	bound := map[string]bool{}
	for i := range 2 {
		sbc := newClaim(ns, "python", fmt.Sprintf("claimant-token-%d-0123456789abcdef", i), func(c *v1alpha1.SandboxClaim) {
			c.Spec.ColdStart = v1alpha1.ColdStartNever
		})
		create(t, e, sbc)
		got := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimBound, v1alpha1.ClaimFailed)
		if got.Status.Phase != v1alpha1.ClaimBound {
			t.Fatalf("claim %d: %s %+v", i, got.Status.Phase, got.Status.Conditions)
		}
		bound[got.Status.PodName] = true
	}
	if !bound[before.Name] || !bound[after.Name] {
		t.Fatalf("bound %v, want the pods of the previous key (%s) and of the current one (%s)", bound, before.Name, after.Name)
	}

	// Only the stranger is left: never handed a credential.
	sbc := newClaim(ns, "python", "claimant-token-x-0123456789abcdef", func(c *v1alpha1.SandboxClaim) {
		c.Spec.ColdStart = v1alpha1.ColdStartNever
	})
	create(t, e, sbc)
	got := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimBound, v1alpha1.ClaimFailed)
	c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBound)
	if got.Status.Phase != v1alpha1.ClaimFailed || c == nil || c.Reason != v1alpha1.ReasonNoWarmPod ||
		!strings.Contains(c.Message, "1 Ready warm pods of the pool were injected under a claim key this controller does not hold") {
		t.Fatalf("claim with only a foreign-key pod left: %s %+v, want Failed NoWarmPod naming the key", got.Status.Phase, c)
	}
	var pod corev1.Pod
	if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(stranger), &pod); err != nil || pod.DeletionTimestamp != nil ||
		pod.Labels[v1alpha1.LabelState] != v1alpha1.StateWarm {
		t.Fatalf("the foreign-key pod was touched: %v, %v", err, pod.ObjectMeta)
	}

	// Dropping the previous key: a fresh old-key pod is counted until then.
	e.WarmPodUnder(p, "node-a", oldKey, nil)
	waitPoolMessage(t, e, p, "1 of 4 warm pods Ready; 1 more")
	// Past the pool status's write interval (1 s), no recompute is pending:
	// only the key change can prompt the next.
	time.Sleep(1500 * time.Millisecond)
	keys.Set(claimkey.Keys{Current: newKey})
	waitPoolMessage(t, e, p, "0 of 4 warm pods Ready; 2 more were injected under a claim key")
}

// waitPoolMessage waits until pool p's Ready condition message contains want.
func waitPoolMessage(t *testing.T, e *claimtest.Env, p *v1alpha1.SandboxPool, want string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "pool condition saying "+want, func() error {
		var got v1alpha1.SandboxPool
		if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(p), &got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, controller.ConditionReady)
		if c == nil || !strings.Contains(c.Message, want) {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
}
