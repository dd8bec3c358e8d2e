package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sandbox.io/injector/internal/keychain"
	"sandbox.io/injector/webhook/entrypoint"
)

// Resolver reads an image's ENTRYPOINT and CMD; *entrypoint.Resolver is the
// real one.
type Resolver interface {
	Resolve(ctx context.Context, image string, platform v1.Platform, kc authn.Keychain) (entrypoint.Command, error)
}

var _ Resolver = (*entrypoint.Resolver)(nil)

// HandlerOptions are what a Handler needs besides its Config.
type HandlerOptions struct {
	// Namespaces reads Namespace objects; an informer-backed cache in
	// production. Required.
	Namespaces client.Reader
	// APIReader reads straight from the API server: Secrets and
	// ServiceAccounts for image pull credentials (so that no Secret is
	// cached), and a namespace created a moment ago that the cache has not
	// seen yet. Required when Resolver is set.
	APIReader client.Reader
	// Resolver reads image commands. Nil: no lookups, every container
	// without a command counts as a failed lookup.
	Resolver Resolver
	// Nodes answers the "auto" injection method's questions; nil means no
	// node is known, so "auto" copies.
	Nodes NodeLookup
	// Metrics: nil creates unregistered ones.
	Metrics *Metrics
	// Logger: nil discards.
	Logger *slog.Logger
}

// Handler is the pod admission handler.
type Handler struct {
	cfg  Config
	opts HandlerOptions
}

var _ admission.Handler = (*Handler)(nil)

// NewHandler checks cfg and returns a Handler.
func NewHandler(cfg Config, opts HandlerOptions) (*Handler, error) {
	cfg, err := cfg.Complete()
	if err != nil {
		return nil, fmt.Errorf("webhook config: %w", err)
	}
	if opts.Namespaces == nil {
		return nil, errors.New("webhook handler: a namespace reader is required")
	}
	if opts.Resolver != nil && opts.APIReader == nil {
		return nil, errors.New("webhook handler: an API reader is required for image lookups")
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, opts: opts}, nil
}

// Handle decides and mutates one pod admission request.
func (h *Handler) Handle(ctx context.Context, req admission.Request) (resp admission.Response) {
	start := time.Now()
	result := ResultError
	log := &requestLog{base: h.opts.Logger, req: &req}
	defer func() {
		if r := recover(); r != nil {
			h.opts.Metrics.Panics.Inc()
			log.get().Error("panic in admission handler", "panic", fmt.Sprint(r))
			resp = admission.Errored(http.StatusInternalServerError, fmt.Errorf("internal error in sandbox-injector: %v", r))
			result = ResultError
		}
		// The UID must be set on every path, also after a panic, or the API
		// server rejects the response.
		resp.UID = req.UID
		elapsed := time.Since(start)
		h.opts.Metrics.Admissions.WithLabelValues(result).Inc()
		h.opts.Metrics.Latency.WithLabelValues(result).Observe(elapsed.Seconds())
		if log.base.Enabled(ctx, slog.LevelDebug) {
			log.get().Debug("admission", "result", result, "duration", elapsed, "dryRun", req.DryRun != nil && *req.DryRun)
		}
	}()

	resp, result = h.handle(ctx, req, log)
	return resp
}

// requestLog is the logger of one request, with its ID, namespace and pod
// name, made the first time a line is written: most admissions write none
// (the injected pod's line is at Debug), and With formats its attributes
// at once, at a cost every admission would pay.
type requestLog struct {
	base *slog.Logger
	req  *admission.Request
	l    *slog.Logger
}

func (r *requestLog) get() *slog.Logger {
	if r.l == nil {
		r.l = r.base.With("requestID", string(r.req.UID), "namespace", r.req.Namespace, "pod", r.req.Name)
	}
	return r.l
}

func (h *Handler) handle(ctx context.Context, req admission.Request, log *requestLog) (admission.Response, string) {
	if req.Kind.Kind != "Pod" || req.Operation != "CREATE" {
		return admission.Allowed("only pod creation is mutated"), ResultSkipped
	}
	pod, err := DecodePod(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err), ResultError
	}
	ns := req.Namespace
	if ns == "" {
		ns = pod.Namespace
	}
	nsLabels, err := h.namespaceLabels(ctx, ns)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err), ResultError
	}

	decision, err := Decide(pod, ns, nsLabels, &h.cfg)
	if err != nil {
		return h.refused(err, log)
	}
	if !decision.Inject {
		return admission.Allowed(decision.Reason).WithWarnings(decision.Warnings...), ResultSkipped
	}
	plan, err := NewPlan(pod, &h.cfg)
	if err != nil {
		return h.refused(err, log)
	}
	if !plan.AlreadyInjected() {
		if plan.Method, err = ChooseMethod(&h.cfg, pod, h.opts.Nodes); err != nil {
			return h.refused(err, log)
		}
	}
	lookups := h.lookUp(ctx, pod, ns, plan.ImagesToLookUp(), log)
	res, err := plan.Patch(lookups)
	if err != nil {
		return h.refused(err, log)
	}
	warnings := slices.Concat(decision.Warnings, res.Warnings)
	if res.AlreadyInjected {
		return admission.Allowed("already injected").WithWarnings(warnings...), ResultSkipped
	}
	// The patch is encoded here, not by admission.Response.Complete from
	// Patches, which costs several times as much (see EncodePatch).
	patch, err := EncodePatch(res.Patch)
	if err != nil {
		log.get().Error("admission failed", "err", err)
		return admission.Errored(http.StatusInternalServerError, err), ResultError
	}
	resp := admission.Allowed("sandbox runner injected")
	patchType := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &patchType
	if req.DryRun == nil || !*req.DryRun {
		// A dry run (kubectl --dry-run=server, the node agent asking
		// which runner is injected now) creates no pod.
		h.opts.Metrics.Injections.WithLabelValues(plan.Method, string(plan.Mode())).Inc()
	}
	// One line per injected pod at Debug: at Info it was the one line every
	// admission wrote, a formatted JSON line and a write to stderr on the
	// hot path. The metrics count injections by method and mode; the pod
	// carries its status annotation.
	if log.base.Enabled(ctx, slog.LevelDebug) {
		log.get().Debug("injected pod", "containers", res.Status.Containers, "mode", plan.Mode(), "method", plan.Method,
			"reason", decision.Reason, "warnings", len(warnings))
	}
	return resp.WithWarnings(warnings...), ResultInjected
}

func (h *Handler) refused(err error, log *requestLog) (admission.Response, string) {
	if errors.Is(err, ErrRefused) {
		log.get().Info("refused pod", "reason", err.Error())
		return admission.Denied("sandbox-injector: " + err.Error()), ResultRefused
	}
	log.get().Error("admission failed", "err", err)
	return admission.Errored(http.StatusInternalServerError, err), ResultError
}

// namespaceLabels reads the namespace from the cache, falling back to the
// API server for a namespace created a moment ago that the cache has not
// seen yet.
func (h *Handler) namespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	var ns corev1.Namespace
	err := h.opts.Namespaces.Get(ctx, types.NamespacedName{Name: name}, &ns)
	if apierrors.IsNotFound(err) && h.opts.APIReader != nil {
		err = h.opts.APIReader.Get(ctx, types.NamespacedName{Name: name}, &ns)
	}
	if err != nil {
		return nil, fmt.Errorf("reading namespace %s: %w", name, err)
	}
	return ns.Labels, nil
}

// ErrLookupFailed is what a pod author learns of a failed image lookup:
// always this one sentence, never the registry's answer or the network
// error, so that admission cannot be used to probe the webhook's network or
// read what a registry says. The webhook's log has the cause.
var ErrLookupFailed = errors.New("the webhook could not read the image's configuration from its registry (the webhook's log says why)")

// lookUp reads the commands of images, all within the configured timeout.
func (h *Handler) lookUp(ctx context.Context, pod *corev1.Pod, ns string, images []string, log *requestLog) map[string]Lookup {
	if len(images) == 0 {
		return nil
	}
	out := make(map[string]Lookup, len(images))
	if h.opts.Resolver == nil {
		for _, img := range images {
			out[img] = Lookup{Err: errors.New("image lookups are turned off")}
		}
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.EntrypointTimeout)
	defer cancel()
	kc, err := h.keychain(ctx, pod, ns)
	if err != nil {
		log.get().Info("reading image pull secrets", "err", err)
	}
	platform := podPlatform(pod)
	for _, img := range images {
		cmd, err := h.opts.Resolver.Resolve(ctx, img, platform, kc)
		if err != nil {
			h.opts.Metrics.LookupFailures.Inc()
			log.get().Info("image command lookup failed", "image", img, "err", err)
			out[img] = Lookup{Err: ErrLookupFailed}
			continue
		}
		out[img] = Lookup{Command: ImageCommand{Entrypoint: cmd.Entrypoint, Cmd: cmd.Cmd}}
	}
	return out
}

// keychain gathers the pod's image pull secrets and its service account's,
// as the kubelet would use them. Missing secrets are skipped, as the kubelet
// skips them.
func (h *Handler) keychain(ctx context.Context, pod *corev1.Pod, ns string) (authn.Keychain, error) {
	names := make([]string, 0, len(pod.Spec.ImagePullSecrets))
	for _, ref := range pod.Spec.ImagePullSecrets {
		names = append(names, ref.Name)
	}
	saName := pod.Spec.ServiceAccountName
	if saName == "" {
		saName = "default"
	}
	var sa corev1.ServiceAccount
	var errs []error
	if err := h.opts.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: saName}, &sa); err == nil {
		for _, ref := range sa.ImagePullSecrets {
			names = append(names, ref.Name)
		}
	} else if !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("reading service account %s/%s: %w", ns, saName, err))
	}
	secrets := make([]*corev1.Secret, 0, len(names))
	for _, n := range names {
		var s corev1.Secret
		if err := h.opts.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: n}, &s); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("reading pull secret %s/%s: %w", ns, n, err))
			}
			continue
		}
		secrets = append(secrets, &s)
	}
	kc, err := keychain.FromSecrets(secrets)
	if err != nil {
		errs = append(errs, err)
		return nil, errors.Join(errs...)
	}
	return kc, errors.Join(errs...)
}

// podPlatform is the platform a pod's images are chosen for: its
// kubernetes.io/arch node selector, else the webhook's own architecture.
func podPlatform(pod *corev1.Pod) v1.Platform {
	arch := pod.Spec.NodeSelector[corev1.LabelArchStable]
	if arch == "" {
		arch = runtime.GOARCH
	}
	return v1.Platform{OS: "linux", Architecture: arch}
}
