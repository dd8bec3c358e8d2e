package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
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
	"sandbox.io/injector/internal/kubescheme"
	"sandbox.io/injector/pool"
)

// PoolConfig configures the warm pool reconciler of one node's agent.
type PoolConfig struct {
	// NodeName is the node the agent runs on and the only node whose pods
	// it manages. Required.
	NodeName string
	// MaxStarting bounds, per pool, how many warm pods of the node may be
	// starting at once: created but not Ready yet (or not yet seen by the
	// agent's cache). A short pool is refilled in batches of at most this
	// many creations, and the next batch follows as pods become Ready, so
	// a burst of claims does not stampede the API server or the node.
	// Defaulted to 5 if unspecified.
	MaxStarting int
	// Metrics receives the pool gauges and counters. Defaulted to a fresh,
	// unregistered NewPoolMetrics() if nil.
	Metrics *PoolMetrics
	// Log is the reconciler's logger. Defaulted to one that discards.
	Log *slog.Logger
	// StuckAfter replaces a warm pod that has not been Ready for this long.
	// Defaulted to 10m if unspecified; negative never replaces one.
	StuckAfter time.Duration
	// Recorder records the Warning Events on pools. Defaulted to the
	// manager's GetEventRecorder("sandbox-agent") if nil.
	Recorder events.EventRecorder
	// ShortRetry is how soon a pool that is short (creations held back by
	// MaxStarting, or creations not yet seen in the cache) is looked at
	// again even without an event. Defaulted to 5s if unspecified.
	ShortRetry time.Duration
	// RunnerImage is the runner image the webhook injects (the chart's; the
	// agent's --runner-image). Warm pods whose sandbox.io/status names
	// another are replaced one at a time, surge first, never leaving a
	// pool without a Ready warm pod (PlanPool). Empty: warm pods keep
	// whatever runner they have.
	RunnerImage string
	// OutdatedRetry is how long, at most, a pod created to replace one of
	// an older runner, that came out with the older runner itself (the
	// webhook is still rolling out), is kept before the next try. Meanwhile
	// the agent asks the webhook every RunnerProbeInterval, by a dry-run
	// create of the pod it would create, which runner it injects, and
	// replaces the pod as soon as the answer is RunnerImage. Defaulted to
	// 1m if unspecified.
	OutdatedRetry time.Duration
	// RefillDelay is how long a pool found short on the node (its warm
	// pods claimed, deleted or failed) waits before the agent creates the
	// pods it lacks; the pods taken meanwhile are created together, and the
	// batches after the first follow without delay. A pod's start takes the
	// node's CPU (its sandbox, network and runner copy) for a good part of
	// a second, which the claims binding at that moment (their runners'
	// /claim, the claimants' first commands) need more: the refill waits
	// until they are done. Defaulted to 500ms if unspecified; negative
	// creates at once.
	RefillDelay time.Duration
}

// MinStuckAfter is the shortest PoolConfig.StuckAfter an agent takes from
// its operator: a pod needs time to pull its image and start.
const MinStuckAfter = time.Minute

// CheckStuckAfter refuses a StuckAfter as an operator gives it (the
// agent's --pool-stuck-after, the chart's agent.pools.stuckAfter: 0 turns
// replacing off) that is negative or under MinStuckAfter.
func CheckStuckAfter(d time.Duration) error {
	if d != 0 && d < MinStuckAfter {
		return fmt.Errorf("%s is under %s (0 turns it off): a pod needs time to pull and start", d, MinStuckAfter)
	}
	return nil
}

// defaultRefillDelay is PoolConfig.RefillDelay when unset: several times
// the time from a claim's take to its claimant's first command.
const defaultRefillDelay = 500 * time.Millisecond

func (c *PoolConfig) setDefaults() {
	if c.MaxStarting <= 0 {
		c.MaxStarting = 5
	}
	if c.Metrics == nil {
		c.Metrics = NewPoolMetrics()
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.StuckAfter == 0 {
		c.StuckAfter = 10 * time.Minute
	}
	if c.ShortRetry <= 0 {
		c.ShortRetry = 5 * time.Second
	}
	if c.OutdatedRetry <= 0 {
		c.OutdatedRetry = time.Minute
	}
	if c.RefillDelay == 0 {
		c.RefillDelay = defaultRefillDelay
	}
}

// expectTimeout is how long a creation or deletion the cache has not shown
// yet is trusted; after it the cache's view wins again.
const expectTimeout = time.Minute

// PoolReconciler keeps this node's warm pods of every SandboxPool. It
// writes no pool status (the claim controller does); its per-node counts
// are its metrics. Its only state is in the API: the pods' labels and the
// pools. Create it with SetupPools.
type PoolReconciler struct {
	cfg    PoolConfig
	client client.Client // reads from the agent's own cache, writes to the API
	exp    expectations
	// answers holds, per pool whose warm pods on the node are moving to
	// RunnerImage, the webhook's last answer to a dry-run create
	// (PlanInput.Webhook).
	answers answers
	// refills holds off the creations of a pool found short for
	// PoolConfig.RefillDelay.
	refills refillGate
}

// SetupPools adds the warm pool reconciler to mgr. It runs on a cache of its
// own, so that it watches only what one node needs: the pods bound to
// cfg.NodeName that carry the sandbox.io/pool label, SandboxPools in every
// namespace, and the node itself. Of a pool it reacts to creation, deletion
// and spec changes only (the generation): the claim controller's status
// writes wake no agent.
func SetupPools(mgr manager.Manager, cfg PoolConfig) (*PoolReconciler, error) {
	cfg.setDefaults()
	if cfg.NodeName == "" {
		return nil, errors.New("setting up warm pools: the node name is required")
	}
	if cfg.Recorder == nil {
		cfg.Recorder = mgr.GetEventRecorder(defaultComponent)
	}
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, err
	}
	hasPool, err := labels.NewRequirement(v1alpha1.LabelPool, selection.Exists, nil)
	if err != nil {
		return nil, fmt.Errorf("building the pod label selector: %w", err)
	}
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme:                      scheme,
		Mapper:                      mgr.GetRESTMapper(),
		ReaderFailOnMissingInformer: true,
		DefaultTransform:            cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {
				Field: fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName),
				Label: labels.NewSelector().Add(*hasPool),
			},
			&corev1.Node{}: {Field: fields.OneTermEqualSelector("metadata.name", cfg.NodeName)},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the pool cache: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("adding the pool cache: %w", err)
	}
	cl, err := client.New(mgr.GetConfig(), client.Options{
		Scheme: scheme, Mapper: mgr.GetRESTMapper(),
		Cache: &client.CacheOptions{Reader: c},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the pool client: %w", err)
	}
	r := &PoolReconciler{cfg: cfg, client: cl}
	// Every informer must exist before the cache starts (the reader fails
	// on a missing one).
	for _, obj := range []client.Object{&corev1.Pod{}, &corev1.Node{}, &v1alpha1.SandboxPool{}} {
		if _, err := c.GetInformer(context.Background(), obj); err != nil {
			return nil, fmt.Errorf("creating the %T informer: %w", obj, err)
		}
	}
	podToPool := handler.TypedEnqueueRequestsFromMapFunc(func(_ context.Context, pod *corev1.Pod) []reconcile.Request {
		name := pod.Labels[v1alpha1.LabelPool]
		if name == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: pod.Namespace, Name: name}}}
	})
	nodeToPools := handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, _ *corev1.Node) []reconcile.Request {
		var list v1alpha1.SandboxPoolList
		if err := cl.List(ctx, &list); err != nil {
			cfg.Log.Error("listing pools after a node change", "err", err)
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, p := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&p)})
		}
		return reqs
	})
	err = ctrl.NewControllerManagedBy(mgr).
		Named("sandboxpool").
		WithOptions(controller.Options{MaxConcurrentReconciles: 2, SkipNameValidation: ptr.To(true)}).
		WatchesRawSource(source.Kind(c, &v1alpha1.SandboxPool{}, &handler.TypedEnqueueRequestForObject[*v1alpha1.SandboxPool]{},
			predicate.TypedGenerationChangedPredicate[*v1alpha1.SandboxPool]{})).
		WatchesRawSource(source.Kind(c, &corev1.Pod{}, podToPool)).
		WatchesRawSource(source.Kind(c, &corev1.Node{}, nodeToPools, nodeChanged)).
		Complete(r)
	if err != nil {
		return nil, fmt.Errorf("creating the pool controller: %w", err)
	}
	return r, nil
}

// nodeChanged passes the node's updates that can change what it keeps: its
// labels (node selectors) and taints (tolerations), not its heartbeats.
var nodeChanged = predicate.TypedFuncs[*corev1.Node]{
	UpdateFunc: func(e event.TypedUpdateEvent[*corev1.Node]) bool {
		return pool.NodeEligibilityChanged(e.ObjectOld, e.ObjectNew)
	},
}

// Reconcile brings this node's warm pods of one pool to the pool's size and
// sets the node's gauges of the pool.
func (r *PoolReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	r.cfg.Metrics.Reconciles.WithLabelValues(req.Namespace, req.Name).Inc()
	log := r.cfg.Log.With("namespace", req.Namespace, "pool", req.Name, "node", r.cfg.NodeName)
	var p v1alpha1.SandboxPool
	if err := r.client.Get(ctx, req.NamespacedName, &p); err != nil {
		if apierrors.IsNotFound(err) {
			// Its pods go with it: they carry the pool as owner.
			r.exp.forget(req.NamespacedName)
			r.answers.forget(req.NamespacedName)
			r.refills.done(req.NamespacedName)
			r.cfg.Metrics.forget(req.Namespace, req.Name)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("reading pool %s: %w", req, err)
	}
	if p.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	var node corev1.Node
	if err := r.client.Get(ctx, types.NamespacedName{Name: r.cfg.NodeName}, &node); err != nil {
		return reconcile.Result{}, fmt.Errorf("reading node %s: %w", r.cfg.NodeName, err)
	}
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(p.Namespace), client.MatchingLabelsSelector{Selector: pool.Selector(p.Name)}); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing pods of pool %s: %w", req, err)
	}
	unobserved, deleted := r.exp.observe(req.NamespacedName, pods.Items, time.Now())
	in := PlanInput{Pool: &p, Node: &node, Pods: pods.Items, Unobserved: unobserved, Deleted: deleted, MaxStarting: r.cfg.MaxStarting,
		StuckAfter: max(r.cfg.StuckAfter, 0), Now: time.Now(), Runner: r.cfg.RunnerImage, OutdatedRetry: r.cfg.OutdatedRetry,
		Webhook: r.answers.get(req.NamespacedName)}
	plan := PlanPool(in)
	if plan.ProbeWebhook {
		in.Webhook = r.probeWebhook(ctx, &p, pods.Items, log)
		r.answers.set(req.NamespacedName, in.Webhook)
		plan = PlanPool(in)
	}
	if plan.RunnerBehind {
		r.warn(&p, ReasonRunnerBehind, fmt.Sprintf("node %s created a warm pod to replace those of an older runner, but the webhook injected an older runner than %s: "+
			"it is still rolling out, or its runner image differs from the agent's; asking it every %s (a dry-run create) and trying again once it injects %s, or after %s",
			r.cfg.NodeName, r.cfg.RunnerImage, RunnerProbeInterval, r.cfg.RunnerImage, r.cfg.OutdatedRetry))
	}
	if !plan.RunnerBehind && plan.Outdated == 0 {
		// Kept until then, not only while behind: a replacement that came
		// out outdated again (a webhook replica still behind) waits for the
		// next probe instead of asking, and churning, at once.
		r.answers.forget(req.NamespacedName)
	}

	// A short pool waits RefillDelay before its first creation (the
	// deletions do not wait).
	var refillWait time.Duration
	switch {
	case plan.Create > 0:
		if refillWait = r.refills.hold(req.NamespacedName, time.Now(), r.cfg.RefillDelay); refillWait > 0 {
			log.Debug("pool short: refill held back", "create", plan.Create, "for", refillWait)
			plan.Short += plan.Create
			plan.Create = 0
		}
	case plan.Short == 0:
		r.refills.done(req.NamespacedName)
	}

	var errs []error
	for _, d := range plan.Delete {
		if err := r.deletePod(ctx, &p, d); err != nil {
			errs = append(errs, err)
		}
	}
	if createErrs := r.createPods(ctx, &p, plan.Create, log); len(createErrs) > 0 {
		err := errors.Join(createErrs...)
		r.warn(&p, ReasonCreateFailed, fmt.Sprintf("node %s cannot create warm pods: %v", r.cfg.NodeName, err))
		errs = append(errs, err)
	}
	r.cfg.Metrics.set(&p, r.cfg.NodeName, plan)
	if len(plan.Delete) > 0 || plan.Create > 0 {
		log.Debug("pool reconciled", "desired", plan.Desired, "warm", plan.Warm, "ready", plan.Ready,
			"claimed", plan.Claimed, "outdated", plan.Outdated, "created", plan.Create, "deleted", len(plan.Delete), "short", plan.Short)
	}
	if !plan.Eligible {
		log.Debug("node keeps no warm pods of the pool", "why", plan.Why)
	}
	if err := errors.Join(errs...); err != nil {
		return reconcile.Result{}, err
	}
	if refillWait > 0 {
		return reconcile.Result{RequeueAfter: refillWait}, nil
	}
	if plan.Short > 0 || unobserved > 0 || plan.Create > 0 {
		return reconcile.Result{RequeueAfter: r.cfg.ShortRetry}, nil
	}
	if plan.RecheckAfter > 0 {
		return reconcile.Result{RequeueAfter: plan.RecheckAfter}, nil
	}
	if plan.Starting > 0 && r.cfg.StuckAfter > 0 {
		// A pod that never turns Ready sends no event when it becomes
		// stuck: look again once it may be.
		return reconcile.Result{RequeueAfter: r.cfg.StuckAfter}, nil
	}
	return reconcile.Result{}, nil
}

// probeWebhook asks the webhook which runner it injects now: it creates,
// with dryRun=All, the warm pod createPods would create (the API server runs
// the mutating webhooks, whose sideEffects are None, and the admission
// policies, and stores nothing), and reads the runner from the pod it gets
// back. A failed dry-run answers InjectsUnknown: the plan then falls back to
// OutdatedRetry.
func (r *PoolReconciler) probeWebhook(ctx context.Context, p *v1alpha1.SandboxPool, pods []corev1.Pod, log *slog.Logger) WebhookAnswer {
	ans := WebhookAnswer{Pods: make([]string, 0, len(pods))}
	for i := range pods {
		ans.Pods = append(ans.Pods, pods[i].Name)
	}
	pod := pool.WarmPod(p, r.cfg.NodeName)
	err := r.client.Create(ctx, pod, client.DryRunAll)
	ans.At = time.Now()
	result := probeError
	switch {
	case err != nil:
		r.cfg.Metrics.Errors.WithLabelValues("probe").Inc()
		log.Warn("asking the webhook which runner it injects (dry-run create of a warm pod)", "err", err)
	case pool.RunnerOutdated(pod, r.cfg.RunnerImage):
		ans.Injects, result = InjectsOlder, string(InjectsOlder)
		log.Debug("the webhook injects another runner", "image", pool.RunnerImage(pod), "want", r.cfg.RunnerImage)
	default:
		ans.Injects, result = InjectsCurrent, string(InjectsCurrent)
		log.Info("the webhook injects the current runner: replacing the warm pod that came out outdated", "image", r.cfg.RunnerImage)
	}
	r.cfg.Metrics.RunnerProbes.WithLabelValues(p.Namespace, p.Name, result).Inc()
	return ans
}

// deletePod deletes a warm pod on the condition that it is still the pod
// the plan saw: a claim that turned it claimed in the meantime changed its
// resourceVersion, and the delete then fails with a conflict instead of
// killing a claimed sandbox.
func (r *PoolReconciler) deletePod(ctx context.Context, p *v1alpha1.SandboxPool, d Deletion) error {
	uid, rv := d.Pod.UID, d.Pod.ResourceVersion
	err := r.client.Delete(ctx, d.Pod, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	switch {
	case err == nil:
		r.exp.deleted(client.ObjectKeyFromObject(p), d.Pod.Name, time.Now())
		r.cfg.Metrics.Deleted.WithLabelValues(p.Namespace, p.Name, d.Reason).Inc()
		r.cfg.Log.Info("deleted warm pod", "namespace", p.Namespace, "pool", p.Name, "pod", d.Pod.Name, "reason", d.Reason)
		return nil
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		// Changed since the cache saw it (claimed, or only its status):
		// decide again on the fresh pod.
		return fmt.Errorf("deleting %s pod %s/%s: changed since read: %w", d.Reason, d.Pod.Namespace, d.Pod.Name, err)
	default:
		r.cfg.Metrics.Errors.WithLabelValues("delete").Inc()
		return fmt.Errorf("deleting %s pod %s/%s: %w", d.Reason, d.Pod.Namespace, d.Pod.Name, err)
	}
}

// createPods creates n warm pods of the pool on the node, in parallel (n
// is already bounded by PoolConfig.MaxStarting).
func (r *PoolReconciler) createPods(ctx context.Context, p *v1alpha1.SandboxPool, n int, log *slog.Logger) []error {
	if n <= 0 {
		return nil
	}
	key := client.ObjectKeyFromObject(p)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			pod := pool.WarmPod(p, r.cfg.NodeName)
			if err := r.client.Create(ctx, pod); err != nil {
				r.cfg.Metrics.Errors.WithLabelValues("create").Inc()
				errs[i] = fmt.Errorf("creating a warm pod of pool %s on node %s: %w", key, r.cfg.NodeName, err)
				return
			}
			r.exp.created(key, pod.Name, time.Now())
			r.cfg.Metrics.Created.WithLabelValues(p.Namespace, p.Name).Inc()
			log.Debug("created warm pod", "pod", pod.Name)
		})
	}
	wg.Wait()
	return slices.DeleteFunc(errs, func(err error) bool { return err == nil })
}

// expectations remember, per pool, the pods the agent created or deleted
// that its cache does not reflect yet, so that a reconcile running on a
// slightly stale cache neither creates nor deletes twice.
type expectations struct {
	mu   sync.Mutex
	made map[types.NamespacedName]map[string]time.Time
	gone map[types.NamespacedName]map[string]time.Time
}

// refillGate remembers, per pool, since when the node has been short of
// warm pods, so that the refill starts PoolConfig.RefillDelay after the
// first pod went: the takes of a burst of claims are refilled together,
// once they are done.
type refillGate struct {
	mu    sync.Mutex
	since map[types.NamespacedName]time.Time
}

// hold returns how much longer pool's creations wait: delay from the first
// time hold was called for it since it was last done, zero once that has
// passed (and until done), and zero for a negative delay.
func (g *refillGate) hold(pool types.NamespacedName, now time.Time, delay time.Duration) time.Duration {
	if delay <= 0 {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.since == nil {
		g.since = map[types.NamespacedName]time.Time{}
	}
	since, ok := g.since[pool]
	if !ok {
		g.since[pool] = now
		return delay
	}
	return max(delay-now.Sub(since), 0)
}

// done ends pool's shortage: the next one waits the whole delay again.
func (g *refillGate) done(pool types.NamespacedName) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.since, pool)
}

// answers are the webhook's last answers to the dry-run creates, by pool.
type answers struct {
	mu sync.Mutex
	m  map[types.NamespacedName]WebhookAnswer
}

func (a *answers) get(pool types.NamespacedName) WebhookAnswer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[pool]
}

func (a *answers) set(pool types.NamespacedName, ans WebhookAnswer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[types.NamespacedName]WebhookAnswer{}
	}
	a.m[pool] = ans
}

func (a *answers) forget(pool types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m, pool)
}

func (e *expectations) created(pool types.NamespacedName, pod string, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.made == nil {
		e.made = map[types.NamespacedName]map[string]time.Time{}
	}
	if e.made[pool] == nil {
		e.made[pool] = map[string]time.Time{}
	}
	e.made[pool][pod] = now
}

func (e *expectations) deleted(pool types.NamespacedName, pod string, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone == nil {
		e.gone = map[types.NamespacedName]map[string]time.Time{}
	}
	if e.gone[pool] == nil {
		e.gone[pool] = map[string]time.Time{}
	}
	e.gone[pool][pod] = now
}

func (e *expectations) forget(pool types.NamespacedName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.made, pool)
	delete(e.gone, pool)
}

// observe drops the expectations the cache's pods now meet (or that timed
// out) and returns how many creations are still unseen and which pods are
// deleted but still shown alive.
func (e *expectations) observe(pool types.NamespacedName, pods []corev1.Pod, now time.Time) (int, map[string]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	alive := make(map[string]bool, len(pods))
	seen := make(map[string]bool, len(pods))
	for i := range pods {
		seen[pods[i].Name] = true
		alive[pods[i].Name] = pods[i].DeletionTimestamp == nil
	}
	unobserved := 0
	for name, at := range e.made[pool] {
		if seen[name] || now.Sub(at) > expectTimeout {
			delete(e.made[pool], name)
			continue
		}
		unobserved++
	}
	var deleted map[string]bool
	for name, at := range e.gone[pool] {
		if !alive[name] || now.Sub(at) > expectTimeout {
			delete(e.gone[pool], name)
			continue
		}
		if deleted == nil {
			deleted = map[string]bool{}
		}
		deleted[name] = true
	}
	return unobserved, deleted
}
