package controller_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim/controller"
	"sandbox.io/injector/internal/claimkey"
	"sandbox.io/injector/internal/claimtest"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/pool"
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
		pool.State(&pod) != v1alpha1.StateWarm {
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

// TestUnheldKeyPodsDeleted: with its keys following the claim key Secret
// (claimkey.Keep), the controller deletes a warm pod injected under a key
// the Secret no longer holds once it has confirmed its keys UnheldKeyGrace
// after the pod's creation, so that the node agent can make one it hands
// out. It deletes no other pod: not one of the current key, not a claimed
// one of the dropped key, not one whose runner has no verifier (another
// claim protocol); and none while its keys go unconfirmed (the Secret not
// read), however old the pod. Each deletion is counted and is an Event on
// the pool.
func TestUnheldKeyPodsDeleted(t *testing.T) {
	const grace = 2 * time.Second
	e := claimtest.Start(t, claimtest.Options{NoController: true})
	kube, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const secretNS, secretName = "default", "claim-key"
	oldKey, newKey := claimkey.Key("old-claim-key-0123456789abcdef"), claimkey.Key("new-claim-key-0123456789abcdef")
	setSecret := func(key claimkey.Key) {
		t.Helper()
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretNS, Name: secretName}, Data: map[string][]byte{claimkey.SecretKey: key}}
		if _, err := kube.CoreV1().Secrets(secretNS).Update(ctx, s, metav1.UpdateOptions{}); apierrors.IsNotFound(err) {
			_, err = kube.CoreV1().Secrets(secretNS).Create(ctx, s, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
		} else if err != nil {
			t.Fatal(err)
		}
	}
	setSecret(oldKey)
	loaded, err := claimkey.Load(ctx, kube, secretNS, secretName, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := claimkey.NewRing(loaded)
	keep := func() (stop func()) {
		kctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			claimkey.Keep(kctx, kube, secretNS, secretName, keys, 100*time.Millisecond, nil)
		}()
		return func() { cancel(); <-done }
	}
	stopKeep := keep()
	defer func() { stopKeep() }()
	e.StartController(controller.Options{Keys: keys, UnheldKeyGrace: grace}, "")
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "python", 8)

	// Before the rotation: a pod claimed under the old key, and one whose
	// runner has no verifier.
	e.WarmPodUnder(p, "node-a", oldKey, nil)
	// The claim forbids a cold start: the controller's cache must hold
	// the warm pod Ready first (a loaded machine once lagged behind it).
	e.WaitPoolReady(p, 1)
	sbc := newClaim(ns, "python", "claimant-token-0123456789abcdef", func(c *v1alpha1.SandboxClaim) {
		c.Spec.ColdStart = v1alpha1.ColdStartNever
	})
	create(t, e, sbc)
	claimed := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimBound, v1alpha1.ClaimFailed)
	if claimed.Status.Phase != v1alpha1.ClaimBound {
		t.Fatalf("claim under the old key: %s %+v", claimed.Status.Phase, claimed.Status.Conditions)
	}
	noVerifier := pool.WarmPod(p, "node-a")
	noVerifier.Annotations[v1alpha1.AnnotationClaimNonce] = "nonce-of-another-protocol"
	e.RunPod(noVerifier)
	old := e.WarmPodUnder(p, "node-a", oldKey, nil)

	// The old key rotated away, not kept as previous (it may have leaked).
	setSecret(newKey)
	testenv.Eventually(t, 10*time.Second, "the controller holding the new key alone", func() error {
		if got := keys.Keys(); !got.Equal(claimkey.Keys{Current: newKey}) {
			return fmt.Errorf("holds %s", got)
		}
		return nil
	})
	current := e.WarmPodUnder(p, "node-a", newKey, nil)
	deletedAt := waitDeleting(t, e, old)
	if due := old.CreationTimestamp.Add(grace - time.Second); deletedAt.Before(due) { // creation times are in whole seconds
		t.Errorf("pod %s of the dropped key deleted at %s, before the grace after its creation (%s) had passed", old.Name, deletedAt.Format(time.RFC3339Nano), old.CreationTimestamp)
	}
	waitPoolMessage(t, e, p, "2 of 8 warm pods Ready")

	// The Secret no longer read: a pod of the dropped key made now (a
	// replica that has not switched) is kept past its grace, since the
	// controller cannot tell that the key is not a newer one.
	stopKeep()
	stale := e.WarmPodUnder(p, "node-a", oldKey, nil)
	time.Sleep(2*grace + 5*time.Second) // past the grace and the controller's recheck after it
	assertKept(t, e, stale, "while the controller's keys went unconfirmed")
	stopKeep = keep()
	waitDeleting(t, e, stale)

	for _, pod := range []*corev1.Pod{current, noVerifier} {
		assertKept(t, e, pod, "though its runner's key is held or it has no verifier")
	}
	var pod corev1.Pod
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: claimed.Status.PodName}, &pod); err != nil || pod.DeletionTimestamp != nil {
		t.Errorf("the pod claimed under the dropped key was deleted: %v, %v", err, pod.DeletionTimestamp)
	}
	if n := counterValue(t, e, "sandbox_claim_unheld_key_pods_deleted_total"); n != 2 {
		t.Errorf("sandbox_claim_unheld_key_pods_deleted_total = %v, want 2", n)
	}
	// Each deletion is an Event on the pool, naming the pod.
	testenv.Eventually(t, 30*time.Second, "an Event on the pool per deleted pod", func() error {
		list, err := kube.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var named []string
		for _, ev := range list.Items {
			if ev.Reason == controller.ReasonUnheldKeyPodDeleted && ev.Regarding.Kind == "SandboxPool" && ev.Regarding.Name == p.Name &&
				ev.Related != nil && (ev.Related.Name == old.Name || ev.Related.Name == stale.Name) && strings.Contains(ev.Note, ev.Related.Name) {
				named = append(named, ev.Related.Name)
			}
		}
		if len(named) != 2 {
			return fmt.Errorf("%d such Events (%v) of %d in the namespace", len(named), named, len(list.Items))
		}
		return nil
	})
}

// waitDeleting waits until pod is being deleted (or gone) and returns when
// that was first seen.
func waitDeleting(t *testing.T, e *claimtest.Env, pod *corev1.Pod) time.Time {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "pod "+pod.Name+" deleted", func() error {
		var got corev1.Pod
		err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(pod), &got)
		if apierrors.IsNotFound(err) || err == nil && got.DeletionTimestamp != nil {
			return nil
		}
		if err != nil {
			return err
		}
		return errors.New("not being deleted")
	})
	return time.Now()
}

// assertKept fails the test when pod is being deleted or gone.
func assertKept(t *testing.T, e *claimtest.Env, pod *corev1.Pod, when string) {
	t.Helper()
	var got corev1.Pod
	if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(pod), &got); err != nil || got.DeletionTimestamp != nil {
		t.Errorf("pod %s was deleted %s: %v, deletion at %v", pod.Name, when, err, got.DeletionTimestamp)
	}
}

// counterValue is the value of the counter (or gauge) name in the
// controller's registry (summed over its labels).
func counterValue(t *testing.T, e *claimtest.Env, name string) float64 {
	t.Helper()
	mfs, err := e.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return v
}
