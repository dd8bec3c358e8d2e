package controller_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim/controller"
	"sandbox.io/injector/internal/claimtest"
	"sandbox.io/injector/internal/testenv"
)

// TestOrphanedPodsDeleted: a claimant who deletes its claim with
// --cascade=orphan must not keep the sandbox, and a warm pod left behind by
// its pool the same way holds no warm slot. The garbage collector (which
// envtest lacks; the e2e TestClaimOrphanedByCascade runs the real one)
// removes the owner references; the controller then deletes each such pod,
// those orphaned before it started too, and no pod a pool or claim
// controls. Each deletion is counted and is an Event on the pool.
func TestOrphanedPodsDeleted(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{NoController: true})
	ctx := t.Context()
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "python", 4)
	orphan := func(pod *corev1.Pod) { orphanPod(t, e, pod) }

	// Before the controller starts: a warm pod orphaned, one its pool
	// controls, and one its pool controls that an earlier release's
	// claim relabelled.
	leftWarm := e.WarmPod(p, "node-a")
	orphan(leftWarm)
	kept := e.WarmPod(p, "node-a")
	relabelled := e.WarmPod(p, "node-a")
	relabelled.Labels[v1alpha1.LabelState] = v1alpha1.StateClaimed
	if err := e.Client.Update(ctx, relabelled); err != nil {
		t.Fatal(err)
	}
	e.StartController(controller.Options{}, "")
	waitDeleting(t, e, leftWarm)

	// A bound claim deleted with --cascade=orphan: the garbage collector
	// removes its owner reference from the pod, then the claim goes.
	e.WaitPoolReady(p, 1)
	sbc := newClaim(ns, "python", "claimant-token-0123456789abcdef", func(c *v1alpha1.SandboxClaim) {
		c.Spec.ColdStart = v1alpha1.ColdStartNever
	})
	create(t, e, sbc)
	bound := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimBound, v1alpha1.ClaimFailed)
	if bound.Status.Phase != v1alpha1.ClaimBound || bound.Status.PodName != kept.Name {
		t.Fatalf("claim %s to pod %q (%+v), want Bound to %s", bound.Status.Phase, bound.Status.PodName, bound.Status.Conditions, kept.Name)
	}
	orphan(kept)
	if err := e.Client.Delete(ctx, bound); err != nil {
		t.Fatal(err)
	}
	waitDeleting(t, e, kept)

	// A wrong deletion would have come with the others': a moment more.
	time.Sleep(2 * time.Second)
	assertKept(t, e, relabelled, "though its pool controls it")
	if n := counterValue(t, e, "sandbox_claim_orphaned_pods_deleted_total"); n != 2 {
		t.Errorf("sandbox_claim_orphaned_pods_deleted_total = %v, want 2", n)
	}
	testenv.Eventually(t, 30*time.Second, "an Event on the pool per deleted pod", func() error {
		events, err := poolEvents(t, e, p, controller.ReasonOrphanedPodDeleted)
		if err != nil {
			return err
		}
		named := map[string]string{}
		for pod, ev := range events {
			named[pod] = ev.Note
		}
		if len(named) != 2 || !strings.Contains(named[leftWarm.Name], leftWarm.Name) || !strings.Contains(named[kept.Name], kept.Name) {
			return fmt.Errorf("such Events %v, want one naming %s and one naming %s", named, leftWarm.Name, kept.Name)
		}
		return nil
	})
	// No one counts an orphan: the pool status counts the one pod its pool
	// still controls (claimed by the relabel), none warm.
	testenv.Eventually(t, 30*time.Second, "the pool status without the orphans", func() error {
		var got v1alpha1.SandboxPool
		if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(p), &got); err != nil {
			return err
		}
		if got.Status.Warm != 0 || got.Status.Claimed != 1 {
			return fmt.Errorf("warm %d claimed %d, want 0 and 1", got.Status.Warm, got.Status.Claimed)
		}
		return nil
	})
}

// TestDeletingClaimReleasesItsPod: a claim being deleted releases its pod at
// once, even while a finalizer of the claimant's holds the claim (and with
// it the garbage collector, which deletes the pod only once the claim is
// gone): the claimant cannot keep a sandbox by deleting its claim with a
// finalizer on it.
func TestDeletingClaimReleasesItsPod(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{})
	ctx := t.Context()
	bound := bindOneWarm(t, e, "held", "claimant-token-0123456789abcdef")
	const hold = "example.com/hold"
	var sbc v1alpha1.SandboxClaim
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(bound), &sbc); err != nil {
		t.Fatal(err)
	}
	sbc.Finalizers = append(sbc.Finalizers, hold)
	if err := e.Client.Update(ctx, &sbc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var got v1alpha1.SandboxClaim
		if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(bound), &got); err == nil {
			got.Finalizers = nil
			_ = e.Client.Update(context.Background(), &got)
		}
	})
	if err := e.Client.Delete(ctx, &sbc); err != nil {
		t.Fatal(err)
	}
	waitDeleting(t, e, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: bound.Namespace, Name: bound.Status.PodName}})
	// The claim itself stays as long as the claimant's finalizer.
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(bound), &sbc); err != nil || sbc.DeletionTimestamp == nil {
		t.Errorf("the claim: %v, deletion at %v; want it held by %s", err, sbc.DeletionTimestamp, hold)
	}
}

// TestOrphanedPodDeletionRefused: when the API server refuses the
// controller's deletion of an orphaned pool pod (here an admission policy;
// RBAC alike), the sandbox runs on with no claim, which a person must
// learn: a Warning Event on the pool names the pod and the refusal, a
// gauge (an alert fires on it) counts the pod until it is gone, the pod is
// not counted as deleted, and the controller retries, so that the pod is
// deleted once the refusal is lifted.
func TestOrphanedPodDeletionRefused(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{})
	ctx := t.Context()
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "python", 1)
	const guardLabel = "test.sandbox.io/undeletable"
	pod := e.WarmPodUnder(p, "node-a", e.Keys.Keys().Current, func(pod *corev1.Pod) { pod.Labels[guardLabel] = "true" })

	// A policy refusing the deletion of pods so labelled, with the reason
	// a policy engine or missing RBAC gives.
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "refuse-undeletable-pods"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: "false",
				Message:    "this pod may not be deleted",
				Reason:     ptr.To(metav1.StatusReasonForbidden),
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "refuse-undeletable-pods"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{
				ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{guardLabel: "true"}},
			},
		},
	}
	for _, o := range []client.Object{policy, binding} {
		if err := e.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = e.Client.Delete(context.Background(), binding)
		_ = e.Client.Delete(context.Background(), policy)
	})
	// The policy is in force once a dry-run deletion is refused.
	testenv.Eventually(t, 30*time.Second, "the policy refusing the pod's deletion", func() error {
		err := e.Client.Delete(ctx, pod, client.DryRunAll)
		if apierrors.IsForbidden(err) {
			return nil
		}
		if err == nil {
			return errors.New("a dry-run deletion went through, want Forbidden")
		}
		return fmt.Errorf("a dry-run deletion: %w, want Forbidden", err)
	})

	orphanPod(t, e, pod)
	testenv.Eventually(t, 30*time.Second, "a Warning on the pool naming the pod and the refusal", func() error {
		events, err := poolEvents(t, e, p, controller.ReasonOrphanedPodNotDeleted)
		if err != nil {
			return err
		}
		ev, ok := events[pod.Name]
		if !ok || ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Note, pod.Name) || !strings.Contains(ev.Note, string(metav1.StatusReasonForbidden)) {
			return fmt.Errorf("such Events %+v, want a Warning about %s naming the refusal", events, pod.Name)
		}
		return nil
	})
	assertKept(t, e, pod, "though the policy refuses it")
	if n := counterValue(t, e, "sandbox_claim_orphaned_pods_deleted_total"); n != 0 {
		t.Errorf("sandbox_claim_orphaned_pods_deleted_total = %v with the deletion refused, want 0", n)
	}
	if n := counterValue(t, e, "sandbox_claim_orphaned_pods_not_deleted"); n != 1 {
		t.Errorf("sandbox_claim_orphaned_pods_not_deleted = %v with the deletion refused, want 1", n)
	}

	// The refusal lifted, the controller's retry deletes the pod.
	if err := e.Client.Delete(ctx, binding); err != nil {
		t.Fatal(err)
	}
	waitDeleting(t, e, pod)
	testenv.Eventually(t, 10*time.Second, "the deletion counted", func() error {
		if n := counterValue(t, e, "sandbox_claim_orphaned_pods_deleted_total"); n != 1 {
			return fmt.Errorf("sandbox_claim_orphaned_pods_deleted_total = %v, want 1", n)
		}
		if n := counterValue(t, e, "sandbox_claim_orphaned_pods_not_deleted"); n != 0 {
			return fmt.Errorf("sandbox_claim_orphaned_pods_not_deleted = %v once deleted, want 0", n)
		}
		return nil
	})
}

// poolEvents are the Events of reason on pool p, by the pod each is
// related to.
func poolEvents(t *testing.T, e *claimtest.Env, p *v1alpha1.SandboxPool, reason string) (map[string]eventsv1.Event, error) {
	t.Helper()
	kube, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	list, err := kube.EventsV1().Events(p.Namespace).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]eventsv1.Event{}
	for _, ev := range list.Items {
		if ev.Reason == reason && ev.Regarding.Kind == "SandboxPool" && ev.Regarding.Name == p.Name && ev.Related != nil {
			out[ev.Related.Name] = ev
		}
	}
	return out, nil
}

// orphanPod removes the owner references of pod, as the garbage collector
// does when its owner is deleted with --cascade=orphan.
func orphanPod(t *testing.T, e *claimtest.Env, pod *corev1.Pod) {
	t.Helper()
	var got corev1.Pod
	if err := e.Client.Get(t.Context(), client.ObjectKeyFromObject(pod), &got); err != nil {
		t.Fatal(err)
	}
	got.OwnerReferences = nil
	if err := e.Client.Update(t.Context(), &got); err != nil {
		t.Fatalf("removing the owner references of pod %s: %v", pod.Name, err)
	}
}
