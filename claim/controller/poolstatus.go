package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/claimkey"
	"sandbox.io/injector/pool"
)

// ConditionReady is the pool condition that says whether every eligible
// node holds its Ready warm pods.
const ConditionReady = "Ready"

// Reasons of the pool's Ready condition.
const (
	ReasonAllReady       = "AllReady"
	ReasonFilling        = "Filling"
	ReasonNoEligibleNode = "NoEligibleNode"
)

// PoolStatusReconciler writes each pool's status from the claim cache, the
// only writer of pool status: totals and the Ready condition, at most once
// per Options.PoolStatusInterval per pool.
type PoolStatusReconciler struct {
	client   client.Client
	interval time.Duration
	// keys decide which warm pods count as Ready: those injected under a
	// claim key the controller holds. Those of another key are deleted
	// unheldGrace after the keys were confirmed (sweepUnheld); negative:
	// never.
	keys          *claimkey.Ring
	unheldGrace   time.Duration
	unheldDeleted prometheus.Counter
	log           *slog.Logger
	// recorder records an Event on the pool per pod deleted.
	recorder events.EventRecorder

	mu        sync.Mutex
	lastWrite map[types.NamespacedName]time.Time
	// podSecurity caches each pool's PodSecurity condition by generation:
	// only the spec changes it.
	podSecurity map[types.NamespacedName]metav1.Condition
}

func setupPoolStatus(mgr manager.Manager, c cache.Cache, cl client.Client, opts Options, m *metrics) error {
	r := &PoolStatusReconciler{client: cl, interval: opts.PoolStatusInterval, keys: opts.Keys,
		unheldGrace: opts.UnheldKeyGrace, unheldDeleted: m.unheldDeleted, log: opts.Logger, recorder: mgr.GetEventRecorder("sandbox-claim-controller"),
		lastWrite: map[types.NamespacedName]time.Time{}, podSecurity: map[types.NamespacedName]metav1.Condition{}}
	podToPool := handler.TypedEnqueueRequestsFromMapFunc(func(_ context.Context, pod *corev1.Pod) []reconcile.Request {
		if name := pod.Labels[v1alpha1.LabelPool]; name != "" {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: pod.Namespace, Name: name}}}
		}
		return nil
	})
	allPools := func(ctx context.Context, after string) []reconcile.Request {
		var list v1alpha1.SandboxPoolList
		if err := cl.List(ctx, &list); err != nil {
			opts.Logger.Error("listing pools after "+after, "err", err)
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for i := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
		return reqs
	}
	nodeToPools := handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, _ *corev1.Node) []reconcile.Request {
		return allPools(ctx, "a node change")
	})
	// A claim key rotation changes which warm pods count as Ready.
	keysChanged := source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		opts.Keys.OnChange(ctx, func() {
			for _, req := range allPools(ctx, "a claim key change") {
				q.Add(req)
			}
		})
		return nil
	})
	err := ctrl.NewControllerManagedBy(mgr).
		Named("sandboxpool-status").
		WithOptions(controller.Options{MaxConcurrentReconciles: 2, SkipNameValidation: ptr.To(true)}).
		WatchesRawSource(source.Kind(c, &v1alpha1.SandboxPool{}, &handler.TypedEnqueueRequestForObject[*v1alpha1.SandboxPool]{},
			predicate.TypedGenerationChangedPredicate[*v1alpha1.SandboxPool]{})).
		WatchesRawSource(source.Kind(c, &corev1.Pod{}, podToPool)).
		WatchesRawSource(source.Kind(c, &corev1.Node{}, nodeToPools, nodeChanged)).
		WatchesRawSource(keysChanged).
		Complete(r)
	if err != nil {
		return fmt.Errorf("creating the pool status controller: %w", err)
	}
	return nil
}

// nodeChanged passes the node events that change which pools it keeps:
// labels, taints and schedulability, not heartbeats.
var nodeChanged = predicate.TypedFuncs[*corev1.Node]{
	UpdateFunc: func(e event.TypedUpdateEvent[*corev1.Node]) bool {
		return pool.NodeEligibilityChanged(e.ObjectOld, e.ObjectNew)
	},
}

// Reconcile recomputes one pool's status and writes it when it changed,
// and deletes its warm pods of claim keys the controller does not hold.
func (r *PoolStatusReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var p v1alpha1.SandboxPool
	if err := r.client.Get(ctx, req.NamespacedName, &p); err != nil {
		if apierrors.IsNotFound(err) {
			r.mu.Lock()
			delete(r.lastWrite, req.NamespacedName)
			delete(r.podSecurity, req.NamespacedName)
			r.mu.Unlock()
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(p.Namespace), client.MatchingFields{indexPool: p.Namespace + "/" + p.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the pods of pool %s from the cache: %w", req, err)
	}
	unheld := r.unheldKeyPods(pods.Items)
	recheck, err := r.sweepUnheld(ctx, &p, pods.Items, unheld)
	if err != nil {
		return ctrl.Result{}, err
	}
	want, err := r.compute(ctx, &p, pods.Items, unheld)
	if err != nil {
		return ctrl.Result{}, err
	}
	if equality.Semantic.DeepEqual(p.Status, want) {
		return ctrl.Result{RequeueAfter: recheck}, nil
	}
	r.mu.Lock()
	wait := r.interval - time.Since(r.lastWrite[req.NamespacedName])
	r.mu.Unlock()
	if wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	up := p.DeepCopy()
	up.Status = want
	if err := r.client.Status().Update(ctx, up); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return ctrl.Result{Requeue: true}, nil
		}
		return ctrl.Result{}, fmt.Errorf("writing the status of pool %s: %w", req, err)
	}
	r.mu.Lock()
	r.lastWrite[req.NamespacedName] = time.Now()
	r.mu.Unlock()
	return ctrl.Result{RequeueAfter: recheck}, nil
}

// unheldKeyPods are the UIDs of the warm pods among pods whose runner's
// verifier is of a claim key the controller does not hold: worked out once
// per reconcile (two HMACs a pod at most) for the status and the sweep.
func (r *PoolStatusReconciler) unheldKeyPods(pods []corev1.Pod) map[types.UID]bool {
	unheld := map[types.UID]bool{}
	for i := range pods {
		pod := &pods[i]
		if pod.DeletionTimestamp == nil && pool.State(pod) == v1alpha1.StateWarm && !keyHeld(r.keys, pod) {
			unheld[pod.UID] = true
		}
	}
	return unheld
}

// compute is the pool's status from the cache, whose pods of the pool are
// pods; unheld are those of an unheld claim key (unheldKeyPods).
func (r *PoolStatusReconciler) compute(ctx context.Context, p *v1alpha1.SandboxPool, pods []corev1.Pod, unheld map[types.UID]bool) (v1alpha1.SandboxPoolStatus, error) {
	var nodes corev1.NodeList
	if err := r.client.List(ctx, &nodes); err != nil {
		return v1alpha1.SandboxPoolStatus{}, fmt.Errorf("listing nodes from the cache: %w", err)
	}
	st := v1alpha1.SandboxPoolStatus{ObservedGeneration: p.Generation, Conditions: append([]metav1.Condition(nil), p.Status.Conditions...)}
	eligible := int32(0)
	for i := range nodes.Items {
		if ok, _ := pool.NodeEligible(p, &nodes.Items[i]); ok && !nodes.Items[i].Spec.Unschedulable {
			eligible++
		}
	}
	st.Desired = eligible * p.Spec.WarmPodsPerNode()
	passedOver := 0
	for i := range pods {
		pod := &pods[i]
		if pod.DeletionTimestamp != nil {
			continue
		}
		switch pool.State(pod) {
		case v1alpha1.StateWarm:
			st.Warm++
			if claimable(p, pod) {
				if unheld[pod.UID] {
					passedOver++
				} else {
					st.Ready++
				}
			}
		case v1alpha1.StateClaimed:
			st.Claimed++
		}
	}
	cond := metav1.Condition{Type: ConditionReady, ObservedGeneration: p.Generation}
	ready := fmt.Sprintf("%d of %d warm pods Ready", st.Ready, st.Desired)
	if passedOver > 0 {
		ready += fmt.Sprintf("; %d more were injected under a claim key the claim controller does not hold, and are not counted: %s", passedOver, unheldAdvice(p, r.unheldGrace))
	}
	switch {
	case eligible == 0:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, ReasonNoEligibleNode, "no node matches the pool's node selector and tolerations"
	case st.Ready >= st.Desired:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, ReasonAllReady, ready
	default:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, ReasonFilling, ready
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	meta.SetStatusCondition(&st.Conditions, r.podSecurityOf(p))
	return st, nil
}

// podSecurityOf is the pool's PodSecurity condition: the Pod Security
// level its pods meet, by the API server's own checks (pool.PodSecurityLevel),
// computed once per generation.
func (r *PoolStatusReconciler) podSecurityOf(p *v1alpha1.SandboxPool) metav1.Condition {
	key := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
	r.mu.Lock()
	c, ok := r.podSecurity[key]
	r.mu.Unlock()
	if ok && c.ObservedGeneration == p.Generation {
		return c
	}
	c = pool.PodSecurityCondition(p)
	r.mu.Lock()
	r.podSecurity[key] = c
	r.mu.Unlock()
	return c
}
