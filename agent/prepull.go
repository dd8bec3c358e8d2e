package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/kubescheme"
	"sandbox.io/injector/prepuller"
)

// Puller is what the pre-pull loop needs of a *prepuller.Puller.
type Puller interface {
	Sync(ctx context.Context, desired []prepuller.Image) error
	Status() []prepuller.ImageStatus
	Paused() string
	Summary() prepuller.Summary
}

var _ Puller = (*prepuller.Puller)(nil)

// Defaults of PrePullConfig.
const (
	DefaultPrePullInterval  = time.Minute
	DefaultLearnMax         = 50
	DefaultLearnForgetAfter = 24 * time.Hour
	defaultDebounce         = time.Second
	defaultStatusInterval   = 2 * time.Second
	cacheSyncTimeout        = 5 * time.Minute
)

// PrePullConfig configures a PrePuller.
type PrePullConfig struct {
	// NodeName is the node this agent runs on. Required.
	NodeName string
	// Puller pulls the images (a *prepuller.Puller over the node's CRI).
	// Required.
	Puller Puller
	// Observer, when set, is the CRI client the Puller pulls through; its
	// outcomes become the ImagePulled and ImagePullFailed Events.
	Observer *PullObserver
	// Client reads the Node and pull Secrets and patches the Node's
	// annotation. A direct (uncached) client. Required.
	Client client.Client
	// Cache is the cache NewPrePullCache built for the same settings;
	// SetupWithManager adds it to the manager. Required.
	Cache cache.Cache
	// Recorder records the Events on the Node. Defaulted by
	// SetupWithManager to the manager's GetEventRecorder(Component) if nil.
	Recorder events.EventRecorder
	// ImageList is the ConfigMap holding the chart's list; an empty Name
	// means no list.
	ImageList types.NamespacedName
	// RunnerImage is the runner image; "" for none.
	RunnerImage string
	// Learn adds the images of injected pods seen in the cluster.
	Learn bool
	// LearnMax bounds the learned images. Default DefaultLearnMax.
	LearnMax int
	// LearnForgetAfter is how long a learned image no pod uses is kept.
	// Default DefaultLearnForgetAfter.
	LearnForgetAfter time.Duration
	// Interval is how often a Sync runs when nothing changes (to pull back
	// an image the kubelet removed, and to follow moved tags). Default
	// DefaultPrePullInterval.
	Interval time.Duration
	// Debounce is how long a change waits in the work queue, gathering the
	// changes that follow it, before the desired set is computed. Default
	// 1s.
	Debounce time.Duration
	// StatusInterval is how often the Node's status is refreshed while a
	// Sync runs. Default 2s.
	StatusInterval time.Duration
	// Component names the Events' reporting controller when Recorder is
	// nil. Default "sandbox-agent".
	Component string
	// Registerer, when set, registers the loop's metrics.
	Registerer prometheus.Registerer
	// Clock is the clock of the learner, of the periodic and retry
	// requeues and of the status refresh during a Sync. Default real.
	Clock clock.WithTicker
	// Log is the loop's logger. Default: discard.
	Log *slog.Logger
}

func (c *PrePullConfig) setDefaults() {
	if c.LearnMax == 0 {
		c.LearnMax = DefaultLearnMax
	}
	if c.LearnForgetAfter == 0 {
		c.LearnForgetAfter = DefaultLearnForgetAfter
	}
	if c.Interval == 0 {
		c.Interval = DefaultPrePullInterval
	}
	if c.Debounce == 0 {
		c.Debounce = defaultDebounce
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = defaultStatusInterval
	}
	if c.Component == "" {
		c.Component = defaultComponent
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// PrePullCacheOptions says what NewPrePullCache watches.
type PrePullCacheOptions struct {
	// ImageList is the one ConfigMap watched (none when Name is empty).
	ImageList types.NamespacedName
	// Learn watches the pods of every namespace (kept in memory stripped to
	// their images, pull secrets and injection annotation).
	Learn bool
}

// NewPrePullCache returns the pre-puller's own cache: the one ConfigMap of
// the image list, every SandboxPool and, when learning, every pod. It is
// separate from the manager's so that its narrow selections (one ConfigMap
// by name, needing RBAC on that name only) do not constrain other parts.
func NewPrePullCache(cfg *rest.Config, o PrePullCacheOptions) (cache.Cache, error) {
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, fmt.Errorf("building the pre-puller's scheme: %w", err)
	}
	byObject := map[client.Object]cache.ByObject{
		&v1alpha1.SandboxPool{}: {},
	}
	if o.ImageList.Name != "" {
		byObject[&corev1.ConfigMap{}] = cache.ByObject{
			Namespaces: map[string]cache.Config{o.ImageList.Namespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", o.ImageList.Name),
		}
	}
	if o.Learn {
		byObject[&corev1.Pod{}] = cache.ByObject{Transform: stripPod}
	}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, ByObject: byObject})
	if err != nil {
		return nil, fmt.Errorf("creating the pre-puller's cache: %w", err)
	}
	return c, nil
}

// stripPod keeps of a pod only what learning reads, so that a cluster's
// pods cost little memory.
func stripPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
	}}
	v, injected := p.Annotations[v1alpha1.AnnotationStatus]
	if !injected {
		return out, nil
	}
	out.Annotations = map[string]string{v1alpha1.AnnotationStatus: v}
	out.Spec.ImagePullSecrets = p.Spec.ImagePullSecrets
	for _, c := range p.Spec.InitContainers {
		out.Spec.InitContainers = append(out.Spec.InitContainers, corev1.Container{Name: c.Name, Image: c.Image})
	}
	for _, c := range p.Spec.Containers {
		out.Spec.Containers = append(out.Spec.Containers, corev1.Container{Name: c.Name, Image: c.Image})
	}
	return out, nil
}

// PrePuller is the node agent's pre-pull loop, a controller-runtime
// reconciler with one key, its node: it computes the desired set (the
// chart's list from a watched ConfigMap, the runner image, the
// SandboxPools' images, the learned images), calls the Puller's Sync when
// the set changes, every Interval and when a failed image's backoff ends,
// and publishes the outcome on its Node: Events on changes, and the
// one-line summary in the annotation v1alpha1.AnnotationPrePull. Add it to
// a manager with SetupWithManager.
type PrePuller struct {
	cfg     PrePullConfig
	learner *Learner
	tracker statusTracker
	metrics *prePullMetrics

	// Reconcile's state: one key, never two reconciles at once.
	started        bool
	last           []prepuller.Image // the set of the last Sync
	lastSync       time.Time         // when the last Sync started
	node           *corev1.Node
	lastAnnotation *string
	problems       []string
	listErr        string
	syncErr        string // why the last sync failed as a whole; "" when it ran
	secrets        *secretCache
	nodeReadAt     time.Time
}

// NewPrePuller checks cfg and returns the loop.
func NewPrePuller(cfg PrePullConfig) (*PrePuller, error) {
	var errs []error
	if cfg.NodeName == "" {
		errs = append(errs, errors.New("NodeName is required"))
	}
	if cfg.Puller == nil {
		errs = append(errs, errors.New("Puller is required"))
	}
	if cfg.Client == nil {
		errs = append(errs, errors.New("Client is required"))
	}
	if cfg.Cache == nil {
		errs = append(errs, errors.New("Cache is required"))
	}
	if cfg.Interval < 0 || cfg.LearnMax < 0 || cfg.LearnForgetAfter < 0 {
		errs = append(errs, errors.New("Interval, LearnMax and LearnForgetAfter must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuring the pre-pull loop: %w", err)
	}
	cfg.setDefaults()
	m, err := newPrePullMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &PrePuller{
		cfg:     cfg,
		learner: &Learner{Max: cfg.LearnMax, ForgetAfter: cfg.LearnForgetAfter},
		metrics: m,
	}, nil
}

func podImagesEqual(a, b *corev1.Pod) bool {
	if a.Annotations[v1alpha1.AnnotationStatus] != b.Annotations[v1alpha1.AnnotationStatus] {
		return false
	}
	images := func(p *corev1.Pod) []string {
		var out []string
		for _, c := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
			out = append(out, c.Image)
		}
		return out
	}
	return slices.Equal(images(a), images(b)) && slices.Equal(a.Spec.ImagePullSecrets, b.Spec.ImagePullSecrets)
}

// desired computes the desired set from what the cache and the API server
// hold now. Nothing here is fatal: what cannot be read is logged (and
// reported on the Node), and the rest is pulled.
func (p *PrePuller) desired(ctx context.Context) []prepuller.Image {
	log := p.cfg.Log
	// The node's labels choose the pools it pulls for; read them at most
	// once per interval, not on every change the loop sees.
	if now := p.cfg.Clock.Now(); p.node == nil || now.Sub(p.nodeReadAt) >= p.cfg.Interval {
		var node corev1.Node
		if err := p.cfg.Client.Get(ctx, types.NamespacedName{Name: p.cfg.NodeName}, &node); err != nil {
			log.Warn("reading the node for the pre-puller", "node", p.cfg.NodeName, "err", err)
		} else {
			p.node, p.nodeReadAt = &node, now
		}
	}
	var in DesiredInput
	if p.node != nil {
		in.NodeLabels = p.node.Labels
	}
	in.RunnerImage = p.cfg.RunnerImage

	p.listErr = ""
	if p.cfg.ImageList.Name != "" {
		var cm corev1.ConfigMap
		err := p.cfg.Cache.Get(ctx, p.cfg.ImageList, &cm)
		switch {
		case apierrors.IsNotFound(err):
			log.Debug("no pre-pull image list", "configMap", p.cfg.ImageList.String())
		case err != nil:
			log.Warn("reading the pre-pull image list", "configMap", p.cfg.ImageList.String(), "err", err)
		default:
			entries, err := ImageListFromConfigMap(&cm)
			in.List = entries
			if err != nil {
				p.listErr = fmt.Sprintf("image list %s: %v", p.cfg.ImageList, err)
				log.Warn("pre-pull image list has malformed entries; pulling the valid ones",
					"configMap", p.cfg.ImageList.String(), "valid", len(entries), "err", err)
			}
			p.metrics.listErrors.Set(float64(countErrors(err)))
		}
	}
	var pools v1alpha1.SandboxPoolList
	if err := p.cfg.Cache.List(ctx, &pools); err != nil {
		log.Warn("listing sandbox pools for the pre-puller", "err", err)
	}
	in.Pools = pools.Items
	if p.cfg.Learn {
		var pods corev1.PodList
		if err := p.cfg.Cache.List(ctx, &pods); err != nil {
			log.Warn("listing pods to learn their images", "err", err)
		}
		in.Learned = p.learner.Observe(pods.Items, p.cfg.Clock.Now())
		p.metrics.learned.Set(float64(len(in.Learned)))
	}
	wanted := Desired(in)
	if p.secrets == nil {
		p.secrets = &secretCache{ttl: p.cfg.Interval, clock: p.cfg.Clock, get: func(ctx context.Context, nn types.NamespacedName) (*corev1.Secret, error) {
			var s corev1.Secret
			if err := p.cfg.Client.Get(ctx, nn, &s); err != nil {
				return nil, err
			}
			return &s, nil
		}}
	}
	named := map[types.NamespacedName]bool{}
	for _, w := range wanted {
		for _, nn := range w.PullSecrets {
			named[nn] = true
		}
	}
	p.secrets.forgetExcept(named)
	images, problems := ResolveAuth(ctx, wanted, p.secrets.Get)
	if len(problems) > 0 && !slices.Equal(problems, p.problems) {
		log.Warn("pull secrets could not be used; pulling without them", "problems", problems)
	}
	p.problems = problems
	return images
}

// sync runs one Sync, refreshing the Node's status while it runs.
func (p *PrePuller) sync(ctx context.Context, desired []prepuller.Image) {
	done := make(chan error, 1)
	go func() { done <- p.cfg.Puller.Sync(ctx, desired) }()
	tick := p.cfg.Clock.NewTicker(p.cfg.StatusInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				if ctx.Err() == nil {
					p.metrics.syncs.WithLabelValues("error").Inc()
					p.cfg.Log.Warn("pre-pull sync", "node", p.cfg.NodeName, "err", err)
					p.syncErr = errorText(err)
				}
			} else {
				p.metrics.syncs.WithLabelValues("ok").Inc()
				p.syncErr = ""
			}
			if ctx.Err() == nil {
				p.publish(ctx)
			}
			return
		case <-tick.C():
			p.publish(ctx)
		}
	}
}

// publish records the Events of what changed and keeps the Node's
// annotation current (patched only when its value changes).
func (p *PrePuller) publish(ctx context.Context) {
	if p.node == nil {
		return // the node was never read: nothing to write on
	}
	var outcomes []PullOutcome
	if p.cfg.Observer != nil {
		outcomes = p.cfg.Observer.Drain()
	}
	events := p.tracker.events(reportInput{
		outcomes: outcomes,
		status:   p.cfg.Puller.Status(),
		paused:   p.cfg.Puller.Paused(),
		problems: p.problems,
		listErr:  p.listErr,
		syncErr:  p.syncErr,
	})
	for _, ev := range events {
		p.event(ev)
	}
	value := annotationValue(p.cfg.Puller.Summary(), p.cfg.Puller.Paused(), p.syncErr)
	if p.lastAnnotation == nil {
		cur, ok := p.node.Annotations[v1alpha1.AnnotationPrePull]
		if ok {
			p.lastAnnotation = &cur
		}
	}
	if p.lastAnnotation != nil && *p.lastAnnotation == value {
		return
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1alpha1.AnnotationPrePull: value}}})
	if err != nil {
		p.cfg.Log.Error("encoding the node annotation patch", "err", err)
		return
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: p.cfg.NodeName}}
	if err := p.cfg.Client.Patch(ctx, node, client.RawPatch(types.MergePatchType, patch)); err != nil {
		p.cfg.Log.Warn("annotating the node with the pre-pull status", "node", p.cfg.NodeName, "err", err)
		return
	}
	p.lastAnnotation = &value
	p.metrics.annotationWrites.Inc()
}

// event records ev on the Node (in namespace default, as the kubelet's
// node Events are).
func (p *PrePuller) event(ev nodeEvent) {
	ref := nodeRef(p.node)
	if ev.Image != "" {
		ref.FieldPath = imageFieldPath(ev.Image)
	}
	eventf(p.cfg.Recorder, ref, ev.Type, ev.Reason, ev.Action, ev.Message)
	p.metrics.events.WithLabelValues(ev.Reason).Inc()
}

func imagesEqual(a, b []prepuller.Image) bool {
	return slices.EqualFunc(a, b, func(x, y prepuller.Image) bool {
		if x.Ref != y.Ref || (x.Auth == nil) != (y.Auth == nil) {
			return false
		}
		return x.Auth == nil || *x.Auth == *y.Auth
	})
}

// countErrors counts the leaves of a joined error.
func countErrors(err error) int {
	if err == nil {
		return 0
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		n := 0
		for _, e := range j.Unwrap() {
			n += countErrors(e)
		}
		return n
	}
	return 1
}

type prePullMetrics struct {
	syncs            *prometheus.CounterVec
	events           *prometheus.CounterVec
	learned          prometheus.Gauge
	listErrors       prometheus.Gauge
	annotationWrites prometheus.Counter
}

func newPrePullMetrics(reg prometheus.Registerer) (*prePullMetrics, error) {
	m := &prePullMetrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_agent_prepull_syncs_total",
			Help: "Pre-pull rounds (Sync) by result (ok, error: the runtime could not be reached).",
		}, []string{"result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_agent_prepull_events_total",
			Help: "Events the pre-puller recorded on its Node, by reason.",
		}, []string{"reason"}),
		learned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sandbox_agent_prepull_learned_images",
			Help: "Images of injected pods the agent remembers (when learning is on).",
		}),
		listErrors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sandbox_agent_prepull_list_errors",
			Help: "Malformed entries and unknown keys in the pre-pull image list ConfigMap.",
		}),
		annotationWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sandbox_agent_prepull_annotation_writes_total",
			Help: "Patches of the Node's sandbox.io/prepull annotation (made only when its value changes).",
		}),
	}
	for _, r := range []string{"ok", "error"} {
		m.syncs.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.syncs, m.events, m.learned, m.listErrors, m.annotationWrites} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering the pre-pull loop's metrics: %w", err)
			}
		}
	}
	return m, nil
}
