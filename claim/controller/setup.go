package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/claimkey"
	"sandbox.io/injector/internal/kubescheme"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner/api"
)

// DefaultConcurrency is how many claims the controller binds at once unless
// told otherwise: more than a burst of claims usually holds, since a claim
// mostly waits on the API server and a runner, and one that waits for a
// worker waits for another claim's three round trips.
const DefaultConcurrency = 64

// Options configure the controller; the zero value of each field but Keys
// means its documented default.
type Options struct {
	// Keys derive the claim credentials of pool pods; the controller
	// follows the ring's changes (a rotation) as they come. Required.
	Keys *claimkey.Ring
	// Concurrency is how many claims are bound at once; default
	// DefaultConcurrency.
	Concurrency int
	// FinishedTTL is how long a Failed or Expired claim is kept before it
	// is deleted; default 1h.
	FinishedTTL time.Duration
	// ColdTimeout bounds how long a cold pod may take to be Ready; default
	// 3m.
	ColdTimeout time.Duration
	// RelabelOnTake also turns a taken warm pod's labels to
	// sandbox.io/state=claimed and sandbox.io/origin=warm, as releases
	// before pool.State did. Without it the take changes only the owner
	// reference and annotations, so NetworkPolicy implementations have
	// nothing to recompute per claim; node agents and claim controllers
	// of those earlier releases, though, count such a pod as warm (and
	// may replace or sweep it).
	RelabelOnTake bool
	// RunnerTimeout bounds the runner's POST /claim; default 5s.
	RunnerTimeout time.Duration
	// RunnerAttempts is how many pods a claim may lose to runners that do
	// not take it before it fails with RunnerRefused; default 3.
	RunnerAttempts int
	// PoolStatusInterval is the shortest time between two status writes of
	// one pool; default 1s.
	PoolStatusInterval time.Duration
	// UnheldKeyGrace is how long after a warm pod's creation the
	// controller must have confirmed its claim keys (Keys.Confirmed), not
	// holding the one the pod was injected under, before it deletes the
	// pod, so that the node agent makes one it can hand out (a key rotated
	// away without being kept as previous); default
	// DefaultUnheldKeyGrace; negative keeps such pods.
	UnheldKeyGrace time.Duration
	// HTTPClient calls runners; default a client of its own with keep-alive
	// connections. Simulations give one whose dialer maps simulated pod
	// addresses to loopback stand-ins.
	HTTPClient *http.Client
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives one line per bound, failed and expired claim;
	// default discards.
	Logger *slog.Logger
	// RunnerImage is the runner image the webhook injects now (the
	// chart's). When several warm pods are claimable, a claim takes one
	// whose sandbox.io/status names it, and only falls back to a pod of an
	// older runner (which the node agents are replacing) when none is
	// Ready. A runner of another claim protocol is let go without failing
	// the claim. Empty: no preference.
	RunnerImage string

	// claimProtocol is the POST /claim protocol the controller speaks;
	// default api.ClaimProtocol (tests play a controller of another
	// release).
	claimProtocol int
}

func (o *Options) setDefaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.FinishedTTL <= 0 {
		o.FinishedTTL = time.Hour
	}
	if o.ColdTimeout <= 0 {
		o.ColdTimeout = 3 * time.Minute
	}
	if o.RunnerTimeout <= 0 {
		o.RunnerTimeout = 5 * time.Second
	}
	if o.RunnerAttempts <= 0 {
		o.RunnerAttempts = 3
	}
	if o.PoolStatusInterval <= 0 {
		o.PoolStatusInterval = time.Second
	}
	if o.UnheldKeyGrace == 0 {
		o.UnheldKeyGrace = DefaultUnheldKeyGrace
	}
	if o.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil // pod IPs are never reached through a proxy
		t.MaxIdleConnsPerHost = 4
		o.HTTPClient = &http.Client{Transport: t}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.claimProtocol == 0 {
		o.claimProtocol = api.ClaimProtocol
	}
}

// Cache index names.
const (
	// indexWarm maps a warm pool pod to "namespace/pool".
	indexWarm = "sandbox.io/warm-pool"
	// indexPool maps every pool pod to "namespace/pool".
	indexPool = "sandbox.io/pool"
	// indexClaim maps a pod whose controller is a SandboxClaim to
	// "namespace/claim".
	indexClaim = "sandbox.io/claim"
)

// Setup adds the claim, orphaned pod and pool status controllers to mgr.
// They run on a cache of their own holding only pool pods (label
// sandbox.io/pool), SandboxPools, SandboxClaims and Nodes, and only on the
// elected leader.
func Setup(mgr manager.Manager, opts Options) error {
	if opts.Keys == nil || len(opts.Keys.Keys().Current) == 0 {
		return errors.New("setting up the claim controller: the claim key is required")
	}
	opts.setDefaults()
	scheme, err := kubescheme.New()
	if err != nil {
		return err
	}
	hasPool, err := labels.NewRequirement(v1alpha1.LabelPool, selection.Exists, nil)
	if err != nil {
		return fmt.Errorf("building the pod label selector: %w", err)
	}
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme:                      scheme,
		Mapper:                      mgr.GetRESTMapper(),
		ReaderFailOnMissingInformer: true,
		DefaultTransform:            cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Label: labels.NewSelector().Add(*hasPool)},
		},
	})
	if err != nil {
		return fmt.Errorf("creating the claim cache: %w", err)
	}
	if err := addIndexes(c); err != nil {
		return err
	}
	for _, obj := range []client.Object{&corev1.Pod{}, &corev1.Node{}, &v1alpha1.SandboxPool{}, &v1alpha1.SandboxClaim{}} {
		if _, err := c.GetInformer(context.Background(), obj); err != nil {
			return fmt.Errorf("creating the %T informer: %w", obj, err)
		}
	}
	if err := mgr.Add(leaderCache{c}); err != nil {
		return fmt.Errorf("adding the claim cache: %w", err)
	}
	cl, err := client.New(mgr.GetConfig(), client.Options{
		Scheme: scheme, Mapper: mgr.GetRESTMapper(),
		Cache: &client.CacheOptions{Reader: c},
	})
	if err != nil {
		return fmt.Errorf("creating the claim client: %w", err)
	}
	api, err := client.New(mgr.GetConfig(), client.Options{Scheme: scheme, Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return fmt.Errorf("creating the uncached claim client: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return err
	}
	r := newClaimReconciler(opts, cl, api, m)
	podToClaim := handler.TypedEnqueueRequestsFromMapFunc(func(_ context.Context, pod *corev1.Pod) []reconcile.Request {
		if owner := pool.ClaimOwner(pod); owner != "" {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: pod.Namespace, Name: owner}}}
		}
		return nil
	})
	err = ctrl.NewControllerManagedBy(mgr).
		Named("sandboxclaim").
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.Concurrency, SkipNameValidation: ptr.To(true)}).
		WatchesRawSource(source.Kind(c, &v1alpha1.SandboxClaim{}, &handler.TypedEnqueueRequestForObject[*v1alpha1.SandboxClaim]{})).
		WatchesRawSource(source.Kind(c, &corev1.Pod{}, podToClaim)).
		WatchesRawSource(source.Kind(c, &corev1.Pod{}, releaseReservations(r))).
		Complete(r)
	if err != nil {
		return fmt.Errorf("creating the claim controller: %w", err)
	}
	if err := setupOrphans(mgr, c, cl, opts, m); err != nil {
		return err
	}
	return setupPoolStatus(mgr, c, cl, opts, m)
}

// releaseReservations ends a pod's reservation once the cache shows it is
// no longer free; it queues nothing.
func releaseReservations(r *ClaimReconciler) handler.TypedEventHandler[*corev1.Pod, reconcile.Request] {
	return handler.TypedFuncs[*corev1.Pod, reconcile.Request]{
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[*corev1.Pod], _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			r.releaseWhenTaken(e.ObjectNew, false)
		},
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[*corev1.Pod], _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			r.releaseWhenTaken(e.Object, true)
		},
	}
}

// leaderCache runs the claim cache on the leader only: a standby replica
// holds no copy of every pool pod.
type leaderCache struct{ cache.Cache }

func (leaderCache) NeedLeaderElection() bool { return true }

func addIndexes(c cache.Cache) error {
	ctx := context.Background()
	poolKey := func(pod *corev1.Pod) string {
		if p := pod.Labels[v1alpha1.LabelPool]; p != "" {
			return pod.Namespace + "/" + p
		}
		return ""
	}
	for name, fn := range map[string]func(*corev1.Pod) string{
		indexPool: poolKey,
		indexWarm: func(pod *corev1.Pod) string {
			if pool.State(pod) != v1alpha1.StateWarm {
				return ""
			}
			return poolKey(pod)
		},
		indexClaim: func(pod *corev1.Pod) string {
			if owner := pool.ClaimOwner(pod); owner != "" {
				return pod.Namespace + "/" + owner
			}
			return ""
		},
	} {
		err := c.IndexField(ctx, &corev1.Pod{}, name, func(o client.Object) []string {
			if k := fn(o.(*corev1.Pod)); k != "" {
				return []string{k}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("indexing pods by %s: %w", name, err)
		}
	}
	return nil
}
