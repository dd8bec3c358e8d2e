package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/logging"
	"sandbox.io/injector/prepuller"
)

// retrySlack is added to a failed image's retry time, so that the Sync it
// wakes finds the image's backoff over.
const retrySlack = 10 * time.Millisecond

// SetupWithManager adds the pre-puller to mgr: its cache, and a controller
// whose one key (the node) is queued once at start and after every change
// of what feeds the desired set: the image list ConfigMap, the
// SandboxPools and, when learning, the pods. Its watches must sync within
// cacheSyncTimeout (most likely RBAC or a missing SandboxPool CRD when they
// do not), or the manager fails.
func (p *PrePuller) SetupWithManager(mgr manager.Manager) error {
	if p.cfg.Recorder == nil {
		p.cfg.Recorder = mgr.GetEventRecorder(p.cfg.Component)
	}
	if err := mgr.Add(p.cfg.Cache); err != nil {
		return fmt.Errorf("adding the pre-puller's cache: %w", err)
	}
	key := reconcile.Request{NamespacedName: types.NamespacedName{Name: p.cfg.NodeName}}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("prepull").
		WithOptions(controller.Options{
			MaxConcurrentReconciles: 1,
			NeedLeaderElection:      ptr.To(false), // every node's agent pulls for its own node
			CacheSyncTimeout:        cacheSyncTimeout,
			SkipNameValidation:      ptr.To(true),
		}).
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(key) // the first Sync, at once
			return nil
		})).
		WatchesRawSource(source.Kind(p.cfg.Cache, &v1alpha1.SandboxPool{}, toNode[*v1alpha1.SandboxPool](key, p.cfg.Debounce), changed[*v1alpha1.SandboxPool]()))
	if p.cfg.ImageList.Name != "" {
		b = b.WatchesRawSource(source.Kind(p.cfg.Cache, &corev1.ConfigMap{}, toNode[*corev1.ConfigMap](key, p.cfg.Debounce), changed[*corev1.ConfigMap]()))
	}
	if p.cfg.Learn {
		b = b.WatchesRawSource(source.Kind(p.cfg.Cache, &corev1.Pod{}, toNode[*corev1.Pod](key, p.cfg.Debounce), changed[*corev1.Pod](), podImagesChanged))
	}
	if err := b.Complete(p); err != nil {
		return fmt.Errorf("creating the pre-pull controller: %w", err)
	}
	return nil
}

// toNode queues the node's key after debounce on every event: the work
// queue keeps one entry per key, so a burst of changes makes one
// reconcile.
func toNode[T client.Object](key reconcile.Request, debounce time.Duration) handler.TypedEventHandler[T, reconcile.Request] {
	add := func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) { q.AddAfter(key, debounce) }
	return handler.TypedFuncs[T, reconcile.Request]{
		CreateFunc: func(_ context.Context, _ event.TypedCreateEvent[T], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
		UpdateFunc: func(_ context.Context, _ event.TypedUpdateEvent[T], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
		DeleteFunc: func(_ context.Context, _ event.TypedDeleteEvent[T], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
	}
}

// changed ignores the informers' periodic resyncs (same resourceVersion).
func changed[T client.Object]() predicate.TypedPredicate[T] {
	return predicate.TypedFuncs[T]{UpdateFunc: func(e event.TypedUpdateEvent[T]) bool {
		return e.ObjectOld.GetResourceVersion() != e.ObjectNew.GetResourceVersion()
	}}
}

// podImagesChanged ignores the updates of a pod that leave what learning
// reads alone (its status, mostly).
var podImagesChanged = predicate.TypedFuncs[*corev1.Pod]{UpdateFunc: func(e event.TypedUpdateEvent[*corev1.Pod]) bool {
	return !podImagesEqual(e.ObjectOld, e.ObjectNew)
}}

// Reconcile computes the desired set and syncs it when it changed, when
// Interval has passed since the last Sync or when a failed image's backoff
// has ended; otherwise it only publishes what changed (the list's errors,
// the secrets). It requeues itself for the next periodic Sync or retry,
// whichever comes first, and never fails: what goes wrong is reported on
// the Node and retried.
func (p *PrePuller) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	ctx = logging.NewContext(ctx, p.cfg.Log)
	if !p.started {
		p.started = true
		p.cfg.Log.Info("pre-puller started", "node", p.cfg.NodeName, "imageList", p.cfg.ImageList.String(),
			"runnerImage", p.cfg.RunnerImage, "learn", p.cfg.Learn, "interval", p.cfg.Interval.String())
	}
	desired := p.desired(ctx)
	if now := p.cfg.Clock.Now(); p.due(now) || !imagesEqual(desired, p.last) {
		p.lastSync = now
		p.sync(ctx, desired)
		p.last = desired
	} else {
		p.publish(ctx)
	}
	return reconcile.Result{RequeueAfter: p.requeueAfter(p.cfg.Clock.Now())}, nil
}

// due reports whether a Sync is due at now whatever the desired set: the
// first one, the periodic one, or a failed image's retry.
func (p *PrePuller) due(now time.Time) bool {
	if p.lastSync.IsZero() || !now.Before(p.lastSync.Add(p.cfg.Interval)) {
		return true
	}
	at, ok := nextRetry(p.cfg.Puller.Status())
	return ok && at.After(p.lastSync) && !now.Before(at)
}

// requeueAfter is how long until the next due Sync: the periodic one, or
// an earlier retry of a failed image (one already past, which the last
// Sync could not pull, waits for the periodic one).
func (p *PrePuller) requeueAfter(now time.Time) time.Duration {
	at := p.lastSync.Add(p.cfg.Interval)
	if retry, ok := nextRetry(p.cfg.Puller.Status()); ok && retry.After(now) && retry.Before(at) {
		at = retry.Add(retrySlack)
	}
	return max(at.Sub(now), retrySlack)
}

// nextRetry is the earliest time a failed image may be pulled again.
func nextRetry(status []prepuller.ImageStatus) (time.Time, bool) {
	var at time.Time
	for _, s := range status {
		if s.State == prepuller.StateFailed && !s.NextRetry.IsZero() && (at.IsZero() || s.NextRetry.Before(at)) {
			at = s.NextRetry
		}
	}
	return at, !at.IsZero()
}
