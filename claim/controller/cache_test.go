package controller_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim/controller"
	"sandbox.io/injector/internal/claimtest"
)

// laggingCache is the controller's cache behind the API server: for the
// pods it holds it answers with an older copy (nil: not seen yet), as an
// informer whose pod events arrive after the claim's.
type laggingCache struct {
	client.Client
	mu   sync.Mutex
	pods map[types.NamespacedName]*corev1.Pod
	// lists, when set, answers pod lists by their field selector (the
	// controller's cache indexes); false: ask the API server.
	lists func(fieldSelector string) ([]corev1.Pod, bool)
}

func (c *laggingCache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if pods, ok := list.(*corev1.PodList); ok && c.lists != nil {
		o := &client.ListOptions{}
		o.ApplyOptions(opts)
		sel := ""
		if o.FieldSelector != nil {
			sel = o.FieldSelector.String()
		}
		if items, ok := c.lists(sel); ok {
			pods.Items = items
			return nil
		}
	}
	return c.Client.List(ctx, list, opts...)
}

func (c *laggingCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if pod, ok := obj.(*corev1.Pod); ok {
		c.mu.Lock()
		old, held := c.pods[key]
		c.mu.Unlock()
		if held {
			if old == nil {
				return apierrors.NewNotFound(corev1.Resource("pods"), key.Name)
			}
			old.DeepCopyInto(pod)
			return nil
		}
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// indexedLists answers the controller's two indexed pod lists, as
// laggingCache.lists: a claim's pods from claimPods, a pool's warm pods
// from warmPods (each called at every list, so a test can change what the
// cache shows).
func indexedLists(claimPods, warmPods func() []corev1.Pod) func(string) ([]corev1.Pod, bool) {
	return func(sel string) ([]corev1.Pod, bool) {
		switch {
		case strings.Contains(sel, "sandbox.io/claim="):
			return claimPods(), true
		case strings.Contains(sel, "sandbox.io/warm-pool="):
			return warmPods(), true
		}
		return nil, false
	}
}

// onePodPool starts an API server (no controller) with a pool of one
// warm pod on node-a, returned as the API server has it now.
func onePodPool(t *testing.T) (*claimtest.Env, *v1alpha1.SandboxPool, *corev1.Pod) {
	t.Helper()
	e := claimtest.Start(t, claimtest.Options{NoController: true})
	e.Node("node-a")
	p := e.Pool(e.Namespace(), "python", 1)
	var warm corev1.Pod
	if err := e.Client.Get(t.Context(), client.ObjectKeyFromObject(e.WarmPod(p, "node-a")), &warm); err != nil {
		t.Fatal(err)
	}
	return e, p, &warm
}

// kubeletWritesStatus changes pod's status as the kubelet's status writes
// do (a condition added), so that a copy read before is out of date.
func kubeletWritesStatus(t *testing.T, e *claimtest.Env, pod *corev1.Pod) {
	t.Helper()
	var now corev1.Pod
	if err := e.Client.Get(t.Context(), client.ObjectKeyFromObject(pod), &now); err != nil {
		t.Fatal(err)
	}
	now.Status.Conditions = append(now.Status.Conditions, corev1.PodCondition{Type: "example.com/probed", Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
	if err := e.Client.Status().Update(t.Context(), &now); err != nil {
		t.Fatal(err)
	}
}

func (c *laggingCache) hold(key types.NamespacedName, pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pods[key] = pod
}

// TestBoundClaimMeetsALaggingCache: a claim just bound, reconciled while the
// cache still shows its pod free in the pool or not at all, stays Bound
// (the pod's and the claim's watch events come in no set order: the
// rollback of the upgrade proof lost a claim so). Once the API server
// agrees that the pod is being deleted, the claim fails PodLost.
func TestBoundClaimMeetsALaggingCache(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{NoController: true})
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "python", 1)
	free := e.WarmPod(p, "node-a").DeepCopy()
	stop := e.StartController(controller.Options{}, "")
	sbc := newClaim(ns, "python", "claimant-token-0123456789abcdef")
	create(t, e, sbc)
	bound := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimBound, v1alpha1.ClaimFailed)
	if bound.Status.Phase != v1alpha1.ClaimBound || bound.Status.PodName != free.Name {
		t.Fatalf("claim %s on pod %q, want Bound on %s: %+v", bound.Status.Phase, bound.Status.PodName, free.Name, bound.Status.Conditions)
	}
	stop()

	cache := &laggingCache{Client: e.Client, pods: map[types.NamespacedName]*corev1.Pod{}}
	r, err := controller.NewReconciler(controller.Options{Keys: e.Keys}, cache, e.Client)
	if err != nil {
		t.Fatal(err)
	}
	podKey := types.NamespacedName{Namespace: ns, Name: free.Name}
	reconcile := func() *v1alpha1.SandboxClaim {
		t.Helper()
		if _, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: sbc.Name}}); err != nil {
			t.Fatalf("reconcile: %v", err)
		}
		var got v1alpha1.SandboxClaim
		if err := e.Client.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: sbc.Name}, &got); err != nil {
			t.Fatal(err)
		}
		return &got
	}
	for what, cached := range map[string]*corev1.Pod{"still free in its pool": free, "not seen yet": nil} {
		cache.hold(podKey, cached)
		if got := reconcile(); got.Status.Phase != v1alpha1.ClaimBound {
			t.Errorf("the cache showing the pod %s: claim %s %+v, want it kept Bound", what, got.Status.Phase, meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBound))
		}
	}

	// Deleted for real (no kubelet here: it stays terminating), while the
	// cache still shows it free: the API server has the last word.
	var pod corev1.Pod
	if err := e.Client.Get(t.Context(), podKey, &pod); err != nil {
		t.Fatal(err)
	}
	if err := e.Client.Delete(t.Context(), &pod); err != nil {
		t.Fatal(err)
	}
	cache.hold(podKey, free)
	got := reconcile()
	cond := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBound)
	if got.Status.Phase != v1alpha1.ClaimFailed || cond == nil || cond.Reason != v1alpha1.ReasonPodLost {
		t.Errorf("its pod deleted: claim %s %+v, want Failed PodLost", got.Status.Phase, cond)
	}
}

// TestPendingClaimSkipsAPodItLetGo: a pending claim whose pod the
// controller let go a moment ago (deleted; its runner still answers for
// the grace period) while the cache still shows that pod as the claim's
// takes another pod, and is not bound to the one being deleted (it would
// fail PodLost at once: the upgrade proof lost a claim so).
func TestPendingClaimSkipsAPodItLetGo(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{NoController: true})
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "python", 2)
	letGo := e.WarmPod(p, "node-a")
	free := e.WarmPod(p, "node-a")
	sbc := newClaim(ns, "python", "claimant-token-0123456789abcdef")
	create(t, e, sbc)

	// The claim took letGo, then let it go: deleted, terminating (no
	// kubelet here), its runner up.
	var pod corev1.Pod
	if err := e.Client.Get(t.Context(), client.ObjectKeyFromObject(letGo), &pod); err != nil {
		t.Fatal(err)
	}
	pod.Labels[v1alpha1.LabelState] = v1alpha1.StateClaimed
	pod.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(sbc, v1alpha1.GroupVersion.WithKind("SandboxClaim"))}
	if err := e.Client.Update(t.Context(), &pod); err != nil {
		t.Fatal(err)
	}
	stale := pod.DeepCopy()
	if err := e.Client.Delete(t.Context(), &pod); err != nil {
		t.Fatal(err)
	}
	var warm corev1.Pod
	if err := e.Client.Get(t.Context(), client.ObjectKeyFromObject(free), &warm); err != nil {
		t.Fatal(err)
	}
	cache := &laggingCache{Client: e.Client, pods: map[types.NamespacedName]*corev1.Pod{}, lists: indexedLists(
		func() []corev1.Pod { return []corev1.Pod{*stale.DeepCopy()} },
		func() []corev1.Pod { return []corev1.Pod{*warm.DeepCopy()} })}
	r, err := controller.NewReconciler(controller.Options{Keys: e.Keys}, cache, e.Client)
	if err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: ns, Name: sbc.Name}
	var got v1alpha1.SandboxClaim
	for range 3 {
		if _, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: key}); err != nil {
			t.Fatalf("reconcile: %v", err)
		}
		if err := e.Client.Get(t.Context(), key, &got); err != nil {
			t.Fatal(err)
		}
		if got.Status.Phase != v1alpha1.ClaimPending && got.Status.Phase != "" {
			break
		}
	}
	if got.Status.Phase != v1alpha1.ClaimBound || got.Status.PodName != free.Name {
		t.Errorf("claim %s on pod %q, want Bound on %s (not on %s, being deleted): %+v", got.Status.Phase, got.Status.PodName, free.Name, letGo.Name,
			meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBound))
	}
}

// TestTakeRetriesAPodTheKubeletJustUpdated: the only warm pod of a pool,
// whose status the kubelet wrote after the controller's cache read it,
// is still free: the claim, which forbids a cold start, takes it (the
// pod's conditional update conflicts, the pod is read again and taken)
// instead of failing NoWarmPod while the pool has a free pod (a burst of
// 20 claims on 20 warm pods lost one so). A pod another controller took
// meanwhile is not taken twice; one the claim took itself (the update's
// answer lost) is its own.
func TestTakeRetriesAPodTheKubeletJustUpdated(t *testing.T) {
	e, p, warm := onePodPool(t)
	ns := p.Namespace
	seen := warm.DeepCopy()
	kubeletWrites := func() { t.Helper(); kubeletWritesStatus(t, e, warm) }
	kubeletWrites()
	listed := seen
	// No claim has a pod yet, as the cache sees it.
	cache := &laggingCache{Client: e.Client, pods: map[types.NamespacedName]*corev1.Pod{}, lists: indexedLists(
		func() []corev1.Pod { return nil },
		func() []corev1.Pod { return []corev1.Pod{*listed.DeepCopy()} })}
	reconciler := func() *controller.ClaimReconciler {
		t.Helper()
		r, err := controller.NewReconciler(controller.Options{Keys: e.Keys}, cache, e.Client)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	bindOnce := func(r *controller.ClaimReconciler, name string) *v1alpha1.SandboxClaim {
		t.Helper()
		sbc := newClaim(ns, "python", "claimant-token-0123456789abcdef", func(c *v1alpha1.SandboxClaim) { c.Name = name; c.Spec.ColdStart = v1alpha1.ColdStartNever })
		create(t, e, sbc)
		key := types.NamespacedName{Namespace: ns, Name: sbc.Name}
		if _, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: key}); err != nil {
			t.Fatalf("reconcile: %v", err)
		}
		var got v1alpha1.SandboxClaim
		if err := e.Client.Get(t.Context(), key, &got); err != nil {
			t.Fatal(err)
		}
		return &got
	}
	got := bindOnce(reconciler(), "first")
	if got.Status.Phase != v1alpha1.ClaimBound || got.Status.PodName != warm.Name {
		t.Fatalf("claim %s on pod %q, want Bound on %s, the pool's free pod: %+v", got.Status.Phase, got.Status.PodName, warm.Name,
			meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBound))
	}

	// A controller that took over (no reservations) whose cache still
	// shows the pod warm: read again, it is the first claim's, and the
	// second claim fails.
	kubeletWrites()
	got = bindOnce(reconciler(), "second")
	if got.Status.Phase != v1alpha1.ClaimFailed {
		t.Fatalf("a second claim on the pool's only pod, taken: %s on %q, want Failed", got.Status.Phase, got.Status.PodName)
	}
	var pod corev1.Pod
	if err := e.Client.Get(t.Context(), client.ObjectKeyFromObject(warm), &pod); err != nil {
		t.Fatal(err)
	}
	if owner := metav1.GetControllerOf(&pod); owner == nil || owner.Name != "first" {
		t.Errorf("pod %s controlled by %+v, want the first claim", pod.Name, owner)
	}

	// A claim whose take got in though its answer never came: its pod,
	// read again, is its own, and it is bound to it.
	other := e.WarmPod(p, "node-a")
	var before corev1.Pod
	if err := e.Client.Get(t.Context(), client.ObjectKeyFromObject(other), &before); err != nil {
		t.Fatal(err)
	}
	listed = &before
	third := newClaim(ns, "python", "claimant-token-0123456789abcdef", func(c *v1alpha1.SandboxClaim) { c.Name = "third"; c.Spec.ColdStart = v1alpha1.ColdStartNever })
	create(t, e, third)
	taken := before.DeepCopy()
	taken.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(third, v1alpha1.GroupVersion.WithKind("SandboxClaim"))}
	if err := e.Client.Update(t.Context(), taken); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(third)
	if _, err := reconciler().Reconcile(t.Context(), ctrl.Request{NamespacedName: key}); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if err := e.Client.Get(t.Context(), key, third); err != nil {
		t.Fatal(err)
	}
	if third.Status.Phase != v1alpha1.ClaimBound || third.Status.PodName != other.Name {
		t.Errorf("a claim whose take got in unanswered: %s on %q, want Bound on %s: %+v", third.Status.Phase, third.Status.PodName, other.Name,
			meta.FindStatusCondition(third.Status.Conditions, v1alpha1.ConditionBound))
	}
}

// TestTakeRereadFailureIsRetried: when reading a changed warm pod again
// fails (the API server unavailable for a moment), the reconcile returns
// the error for a retry with back-off: the claim is not failed, the pod is
// not taken, and the reservation the claim held on it is released, so that
// the next claim may take it.
func TestTakeRereadFailureIsRetried(t *testing.T) {
	e, p, warm := onePodPool(t)
	ns := p.Namespace
	seen := warm.DeepCopy()
	// A status write after the cache's read: the take conflicts.
	kubeletWritesStatus(t, e, warm)
	cache := &laggingCache{Client: e.Client, pods: map[types.NamespacedName]*corev1.Pod{}, lists: indexedLists(
		func() []corev1.Pod { return nil },
		func() []corev1.Pod { return []corev1.Pod{*seen.DeepCopy()} })}
	var unavailable atomic.Bool
	unavailable.Store(true)
	direct, err := client.NewWithWatch(e.Config, client.Options{Scheme: e.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	api := interceptor.NewClient(direct, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, isPod := obj.(*corev1.Pod); isPod && unavailable.Load() {
				return apierrors.NewServiceUnavailable("the API server is restarting")
			}
			return c.Get(ctx, key, obj, opts...)
		},
	})
	r, err := controller.NewReconciler(controller.Options{Keys: e.Keys}, cache, api)
	if err != nil {
		t.Fatal(err)
	}
	claimOf := func(name string) *v1alpha1.SandboxClaim {
		t.Helper()
		sbc := newClaim(ns, "python", "claimant-token-0123456789abcdef", func(c *v1alpha1.SandboxClaim) { c.Name = name; c.Spec.ColdStart = v1alpha1.ColdStartNever })
		create(t, e, sbc)
		return sbc
	}
	reread := func(sbc *v1alpha1.SandboxClaim) {
		t.Helper()
		if err := e.Client.Get(t.Context(), client.ObjectKeyFromObject(sbc), sbc); err != nil {
			t.Fatal(err)
		}
	}

	first := claimOf("first")
	_, err = r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(first)})
	if err == nil || !strings.Contains(err.Error(), "reading pod") || !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("reconcile with the re-read failing: %v, want the re-read's error", err)
	}
	reread(first)
	if first.Status.Phase == v1alpha1.ClaimFailed || first.Status.Phase == v1alpha1.ClaimBound {
		t.Errorf("claim %s after a failed re-read, want it still pending: %+v", first.Status.Phase, first.Status.Conditions)
	}
	var pod corev1.Pod
	if err := e.Client.Get(t.Context(), client.ObjectKeyFromObject(warm), &pod); err != nil {
		t.Fatal(err)
	}
	if pool := metav1.GetControllerOf(&pod); pool == nil || pool.UID != p.UID {
		t.Errorf("pod %s controlled by %+v after a failed re-read, want its pool", pod.Name, pool)
	}

	// The API server back: another claim takes the pod, which the first
	// claim no longer holds.
	unavailable.Store(false)
	second := claimOf("second")
	if _, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(second)}); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	reread(second)
	if second.Status.Phase != v1alpha1.ClaimBound || second.Status.PodName != warm.Name {
		t.Errorf("the next claim: %s on %q, want Bound on %s, released by the first: %+v", second.Status.Phase, second.Status.PodName, warm.Name,
			meta.FindStatusCondition(second.Status.Conditions, v1alpha1.ConditionBound))
	}
}
