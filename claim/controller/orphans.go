package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/pool"
)

const (
	// ReasonOrphanedPodDeleted is the reason of the Event recorded when the
	// controller deletes a pool pod that no pool or claim controls.
	ReasonOrphanedPodDeleted = "OrphanedPodDeleted"
	// ReasonOrphanedPodNotDeleted is the reason of the Warning recorded
	// when the API server refuses that deletion (RBAC, an admission policy
	// or webhook): the sandbox runs on with no claim until someone lets
	// the controller delete it or deletes it, and the controller retries
	// with back-off meanwhile.
	ReasonOrphanedPodNotDeleted = "OrphanedPodNotDeleted"
)

// OrphanReconciler deletes pool pods that neither a SandboxPool nor a
// SandboxClaim controls (pool.State says v1alpha1.StateOrphaned). The
// garbage collector makes one (besides a claims.extraPoolPodCreators user,
// whom the pool-pods policy lets do as it pleases): deleting a claim with
// --cascade=orphan removes the claim's owner reference from its pod and
// leaves the pod, its runner and the claimant's credential running with no
// lifetime; deleting a pool so leaves its warm pods. A sandbox lives as
// long as its claim and no longer, so the controller deletes such a pod as
// soon as its cache shows it, and no one counts it meanwhile (the node
// agent makes a warm pod in its place).
type OrphanReconciler struct {
	client   client.Client
	log      *slog.Logger
	recorder events.EventRecorder
	deleted  prometheus.Counter

	// undeleted are the orphaned pods whose last deletion the API server
	// refused, counted by the gauge: sandboxes running on with no claim.
	mu        sync.Mutex
	undeleted map[types.NamespacedName]bool
	gauge     prometheus.Gauge
}

func setupOrphans(mgr manager.Manager, c cache.Cache, cl client.Client, opts Options, m *metrics) error {
	r := &OrphanReconciler{client: cl, log: opts.Logger, recorder: mgr.GetEventRecorder("sandbox-claim-controller"), deleted: m.orphansDeleted,
		undeleted: map[types.NamespacedName]bool{}, gauge: m.orphansUndeleted}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("sandbox-orphaned-pods").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1, SkipNameValidation: ptr.To(true)}).
		WatchesRawSource(source.Kind(c, &corev1.Pod{}, &handler.TypedEnqueueRequestForObject[*corev1.Pod]{},
			// A pod whose deletion was refused is followed until it is
			// gone or controlled again, whoever deletes or adopts it.
			predicate.NewTypedPredicateFuncs(func(pod *corev1.Pod) bool { return orphaned(pod) || r.isUndeleted(pod) }))).
		Complete(r)
	if err != nil {
		return fmt.Errorf("creating the orphaned pod controller: %w", err)
	}
	return nil
}

// orphaned reports whether pod is a pool pod that no pool or claim
// controls, not already being deleted.
func orphaned(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp == nil && pod.Labels[v1alpha1.LabelPool] != "" && pool.State(pod) == v1alpha1.StateOrphaned
}

// Reconcile deletes the pod when the cache shows it orphaned, conditioned
// on the UID and resourceVersion the cache saw.
func (r *OrphanReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var pod corev1.Pod
	if err := r.client.Get(ctx, req.NamespacedName, &pod); err != nil {
		if apierrors.IsNotFound(err) {
			r.setUndeleted(req.NamespacedName, false)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !orphaned(&pod) {
		r.setUndeleted(req.NamespacedName, false)
		return ctrl.Result{}, nil
	}
	err := r.client.Delete(ctx, &pod, client.Preconditions{UID: &pod.UID, ResourceVersion: &pod.ResourceVersion})
	poolName := pod.Labels[v1alpha1.LabelPool]
	switch {
	case err == nil:
		r.setUndeleted(req.NamespacedName, false)
	case apierrors.IsNotFound(err):
		r.setUndeleted(req.NamespacedName, false)
		return ctrl.Result{}, nil
	case apierrors.IsConflict(err):
		// Changed since the cache saw it: its change brings it back.
		return ctrl.Result{}, nil
	case !transient(err):
		// Refused: retried with back-off (the refusal may be lifted), and
		// said where a person looks, as a running sandbox with no claim
		// is one no lifetime ends.
		r.setUndeleted(req.NamespacedName, true)
		r.recorder.Eventf(r.regarding(ctx, &pod), &pod, corev1.EventTypeWarning, ReasonOrphanedPodNotDeleted, "Delete",
			"could not delete pod %s of pool %s (node %s), which neither its pool nor a SandboxClaim controls any more, so its sandbox runs on with no claim: %s; retrying with back-off. Let the controller delete pool pods in namespace %s, or delete the pod",
			pod.Name, poolName, pod.Spec.NodeName, apierrors.ReasonForError(err), pod.Namespace)
		return ctrl.Result{}, fmt.Errorf("deleting orphaned pool pod %s, refused: %w", req, err)
	default:
		return ctrl.Result{}, fmt.Errorf("deleting orphaned pool pod %s: %w", req, err)
	}
	r.deleted.Inc()
	r.recorder.Eventf(r.regarding(ctx, &pod), &pod, corev1.EventTypeNormal, ReasonOrphanedPodDeleted, "Delete",
		"deleted pod %s of pool %s (node %s): neither its pool nor a SandboxClaim controls it any more (an owner deleted with --cascade=orphan), and a sandbox lives no longer than its claim",
		pod.Name, poolName, pod.Spec.NodeName)
	r.log.Info("deleted an orphaned pool pod: neither its pool nor a SandboxClaim controls it",
		"namespace", pod.Namespace, "pool", poolName, "pod", pod.Name, "node", pod.Spec.NodeName,
		"labelledState", pod.Labels[v1alpha1.LabelState])
	return ctrl.Result{}, nil
}

// regarding is what an Event about the orphaned pod is recorded on: its
// pool while it is still there (kubectl describe sandboxpool shows it),
// else the pod.
func (r *OrphanReconciler) regarding(ctx context.Context, pod *corev1.Pod) runtime.Object {
	var p v1alpha1.SandboxPool
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: pod.Labels[v1alpha1.LabelPool]}, &p); err == nil {
		return &p
	}
	return pod
}

// setUndeleted records whether the pod key's last deletion was refused and
// sets the gauge.
func (r *OrphanReconciler) setUndeleted(key types.NamespacedName, refused bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if refused {
		r.undeleted[key] = true
	} else {
		delete(r.undeleted, key)
	}
	r.gauge.Set(float64(len(r.undeleted)))
}

func (r *OrphanReconciler) isUndeleted(pod *corev1.Pod) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.undeleted[types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}]
}
