package claim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	runnerclient "sandbox.io/injector/runner/client"
)

// Errors of a claim that did not bind, matched with errors.Is; the error's
// text carries the controller's message.
var (
	// ErrNoSandbox: no warm pod of the pool was free and the claim forbade
	// a cold start.
	ErrNoSandbox = errors.New("no sandbox free")
	// ErrExpired: the claim's lifetime ended; its sandbox was deleted.
	ErrExpired = errors.New("sandbox expired")
	// ErrFailed: the claim failed for another reason (pool missing, cold
	// pod never Ready, runner refused).
	ErrFailed = errors.New("claim failed")
	// ErrNotBound: the claim exists but is not bound (yet).
	ErrNotBound = errors.New("claim not bound")
)

// Client-side rate limits of a Client's requests to the API server when the
// rest.Config sets none (client-go's default is 5/s with bursts of 10,
// which a burst of claims would wait on).
const (
	DefaultQPS   = 200
	DefaultBurst = 400
)

// DefaultTimeout bounds a claim that waits for a cold pod.
const DefaultTimeout = 3 * time.Minute

// TokenBytes is the length of a generated claimant token, before hex
// encoding.
const TokenBytes = 32

// Transport is how the client reaches a sandbox's runner.
type Transport string

const (
	// TransportDirect dials the pod IP and runner port: the fastest, and
	// what a program inside the cluster uses.
	TransportDirect Transport = "direct"
	// TransportProxy goes through the API server's pod proxy
	// (pods/NAME:PORT/proxy) with the client's own credentials: it works
	// from outside the cluster, at the cost of a hop through the API server.
	TransportProxy Transport = "proxy"
)

// ParseTransport reads "direct" or "proxy".
func ParseTransport(s string) (Transport, error) {
	switch t := Transport(s); t {
	case TransportDirect, TransportProxy:
		return t, nil
	}
	return "", fmt.Errorf("transport %q is not %s or %s", s, TransportDirect, TransportProxy)
}

// Config configures a Client; the zero value of each field means its
// documented default.
type Config struct {
	// Transport is how sandboxes' runners are reached; default
	// TransportDirect.
	Transport Transport
	// HTTPClient reaches runners directly (TransportDirect); default a
	// client with its own copy of http.DefaultTransport.
	HTTPClient *http.Client
}

// Client creates, watches and deletes SandboxClaims and opens their
// sandboxes. It is safe for concurrent use.
type Client struct {
	cfg   Config
	rest  *rest.Config
	kube  client.WithWatch
	proxy *http.Client
}

// New returns a Client of the API server of restCfg (with DefaultQPS and
// DefaultBurst when restCfg sets no rate limit).
func New(restCfg *rest.Config, cfg Config) (*Client, error) {
	if restCfg == nil {
		return nil, errors.New("building claim client: rest config is nil")
	}
	if cfg.Transport == "" {
		cfg.Transport = TransportDirect
	}
	if _, err := ParseTransport(string(cfg.Transport)); err != nil {
		return nil, fmt.Errorf("building claim client: %w", err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	restCfg = rest.CopyConfig(restCfg)
	if restCfg.QPS == 0 && restCfg.RateLimiter == nil {
		restCfg.QPS, restCfg.Burst = DefaultQPS, DefaultBurst
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building scheme: %w", err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building scheme: %w", err)
	}
	kube, err := client.NewWithWatch(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("building the sandboxclaims client: %w", err)
	}
	proxy, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		return nil, fmt.Errorf("building API server HTTP client: %w", err)
	}
	return &Client{cfg: cfg, rest: restCfg, kube: kube, proxy: proxy}, nil
}

// Request is one claim.
type Request struct {
	// Namespace and Pool name the SandboxPool to claim from.
	Namespace, Pool string
	// Name of the SandboxClaim; empty: generated from the pool's name.
	Name string
	// Env is added to every command the claimant runs in the sandbox.
	Env map[string]string
	// Lifetime is the sandbox's lifetime from binding (rounded up to a
	// second); 0 means none.
	Lifetime time.Duration
	// NoCold forbids a cold pod: without a free warm pod the claim fails
	// with ErrNoSandbox.
	NoCold bool
	// Token is the claimant token to use; empty: a random one.
	Token string
	// Transport overrides Config.Transport for this sandbox.
	Transport Transport
	// Timeout bounds the wait for the claim to bind; default DefaultTimeout.
	Timeout time.Duration
	// Labels and Annotations of the SandboxClaim.
	Labels, Annotations map[string]string
	// Progress, when set, is called with the claim each time the wait sees
	// it change while it is still pending (a cold pod starting: its Bound
	// condition says what the claim waits for). It runs on Claim's
	// goroutine and must not block.
	Progress func(*v1alpha1.SandboxClaim)
}

// Claim creates a SandboxClaim and waits until it is bound. On failure, or
// when ctx ends first, the claim is deleted again (its sandbox with it).
//
// The watch that waits for the binding is opened while the claim is being
// created, not after: a claim binds in a few API round trips, and one
// spent opening a watch would be one of them. So that the watch can name
// the claim before it exists, a claim without Request.Name is named here
// (the pool's name and five random characters, as the API server's
// generateName does), and named again should the name be taken.
func (c *Client) Claim(ctx context.Context, req Request) (*Sandbox, error) {
	start := time.Now()
	token := req.Token
	if token == "" {
		var err error
		if token, err = NewToken(); err != nil {
			return nil, err
		}
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sbc, w, err := c.createWatched(ctx, wctx, req, token)
	if err != nil {
		return nil, err
	}
	bound, err := c.waitBound(wctx, sbc, w, req.Progress)
	if err != nil {
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer dcancel()
		if derr := c.kube.Delete(dctx, sbc, client.Preconditions{UID: &sbc.UID}); derr != nil && !apierrors.IsNotFound(derr) {
			err = errors.Join(err, fmt.Errorf("deleting the claim %s/%s: %w", sbc.Namespace, sbc.Name, derr))
		}
		return nil, err
	}
	sb, err := c.sandbox(bound, token, req.Transport)
	if err != nil {
		return nil, err
	}
	sb.Duration = time.Since(start)
	return sb, nil
}

// nameAttempts bounds how many generated names Claim tries before it
// gives up (a taken name is rare: 27^5 names per pool).
const nameAttempts = 5

// createWatched creates the claim of req while a watch of its name opens
// (on wctx), and returns the created claim with that watch; the watch is
// nil when it could not be opened, and waitBound then opens its own.
func (c *Client) createWatched(ctx, wctx context.Context, req Request, token string) (*v1alpha1.SandboxClaim, watch.Interface, error) {
	for attempt := 1; ; attempt++ {
		sbc := NewClaim(req, token)
		if sbc.Name == "" {
			sbc.Name = GenerateName(req.Pool)
		}
		// The watch goroutine gets the name as values: Create decodes the
		// answer into sbc meanwhile.
		namespace, name := sbc.Namespace, sbc.Name
		opened := make(chan watch.Interface, 1)
		go func() {
			w, err := c.watchClaim(wctx, namespace, name, "")
			if err != nil {
				w = nil
			}
			opened <- w
		}()
		err := c.kube.Create(ctx, sbc)
		w := <-opened
		if err == nil {
			return sbc, w, nil
		}
		if w != nil {
			w.Stop()
		}
		if req.Name == "" && apierrors.IsAlreadyExists(err) && attempt < nameAttempts {
			continue
		}
		return nil, nil, fmt.Errorf("creating a claim of pool %s/%s: %w", req.Namespace, req.Pool, err)
	}
}

// GenerateName is a claim name for pool: its name (cut to leave room) and
// five random characters, as the API server makes from generateName.
func GenerateName(pool string) string {
	const suffix, maxName = 5, validation.DNS1123LabelMaxLength
	base := pool + "-"
	if len(base) > maxName-suffix {
		base = base[:maxName-suffix]
	}
	return base + utilrand.String(suffix)
}

// NewClaim is the SandboxClaim that Claim creates for req with token.
func NewClaim(req Request, token string) *v1alpha1.SandboxClaim {
	sbc := &v1alpha1.SandboxClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name: req.Name, Namespace: req.Namespace,
			Labels: req.Labels, Annotations: req.Annotations,
		},
		Spec: v1alpha1.SandboxClaimSpec{
			PoolName:  req.Pool,
			ColdStart: v1alpha1.ColdStartAllow,
			Auth:      v1alpha1.ClaimAuth{TokenSHA256: TokenSHA256(token)},
		},
	}
	if sbc.Name == "" {
		sbc.GenerateName = req.Pool + "-"
	}
	if req.NoCold {
		sbc.Spec.ColdStart = v1alpha1.ColdStartNever
	}
	if req.Lifetime > 0 {
		secs := int64((req.Lifetime + time.Second - 1) / time.Second)
		sbc.Spec.ActiveDeadlineSeconds = &secs
	}
	names := make([]string, 0, len(req.Env))
	for k := range req.Env {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		sbc.Spec.Env = append(sbc.Spec.Env, v1alpha1.ClaimEnvVar{Name: k, Value: req.Env[k]})
	}
	return sbc
}

// waitBound watches sbc until it is Bound (returned) or Failed or Expired
// (an error wrapping ErrNoSandbox, ErrExpired or ErrFailed), calling
// progress (when not nil) with each pending version it sees. w, when not
// nil, is a watch of sbc's name opened before sbc was created; waitBound
// stops it. Only events of sbc itself (its UID) count: a claim of the same
// name deleted before sbc was created is not it.
func (c *Client) waitBound(ctx context.Context, sbc *v1alpha1.SandboxClaim, w watch.Interface, progress func(*v1alpha1.SandboxClaim)) (*v1alpha1.SandboxClaim, error) {
	if done, err := claimOutcome(sbc); done {
		if w != nil {
			w.Stop()
		}
		return sbc, err
	}
	if progress == nil {
		progress = func(*v1alpha1.SandboxClaim) {}
	}
	rv := sbc.ResourceVersion
	for {
		if w == nil {
			var err error
			if w, err = c.watchClaim(ctx, sbc.Namespace, sbc.Name, rv); err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("waiting for claim %s/%s to bind: %w", sbc.Namespace, sbc.Name, ctx.Err())
				}
				// An expired resourceVersion: read the claim and watch again.
				var got v1alpha1.SandboxClaim
				if gerr := c.kube.Get(ctx, client.ObjectKeyFromObject(sbc), &got); gerr != nil {
					return nil, fmt.Errorf("waiting for claim %s/%s to bind: %w", sbc.Namespace, sbc.Name, gerr)
				}
				if got.UID != sbc.UID {
					return nil, fmt.Errorf("claim %s/%s was deleted while waiting for it to bind: %w", sbc.Namespace, sbc.Name, ErrFailed)
				}
				if done, err := claimOutcome(&got); done {
					return &got, err
				}
				progress(&got)
				rv = got.ResourceVersion
				continue
			}
		}
		got, lastRV, err := watchOutcome(ctx, w, sbc, progress)
		w.Stop()
		w = nil
		if got != nil || err != nil {
			return got, err
		}
		if lastRV != "" {
			rv = lastRV
		}
	}
}

// watchClaim watches the claim namespace/name from resourceVersion rv (""
// for its current state, then its changes).
func (c *Client) watchClaim(ctx context.Context, namespace, name, rv string) (watch.Interface, error) {
	var list v1alpha1.SandboxClaimList
	return c.kube.Watch(ctx, &list, client.InNamespace(namespace),
		&client.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name), Raw: &metav1.ListOptions{ResourceVersion: rv}})
}

// watchOutcome reads w until the claim is done; nil, nil means the watch
// ended first (lastRV is where to resume). Each pending version goes to
// progress.
func watchOutcome(ctx context.Context, w watch.Interface, sbc *v1alpha1.SandboxClaim, progress func(*v1alpha1.SandboxClaim)) (*v1alpha1.SandboxClaim, string, error) {
	lastRV := ""
	for {
		select {
		case <-ctx.Done():
			return nil, "", fmt.Errorf("waiting for claim %s/%s to bind: %w", sbc.Namespace, sbc.Name, ctx.Err())
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, lastRV, nil
			}
			switch ev.Type {
			case watch.Deleted:
				if got, ok := ev.Object.(*v1alpha1.SandboxClaim); ok && got.UID != sbc.UID {
					continue
				}
				return nil, "", fmt.Errorf("claim %s/%s was deleted while waiting for it to bind: %w", sbc.Namespace, sbc.Name, ErrFailed)
			case watch.Error:
				return nil, lastRV, nil
			}
			got, ok := ev.Object.(*v1alpha1.SandboxClaim)
			if !ok || got.UID != sbc.UID {
				continue
			}
			lastRV = got.ResourceVersion
			if done, err := claimOutcome(got); done {
				return got, "", err
			}
			progress(got)
		}
	}
}

// claimOutcome says whether the claim is done waiting and, if it did not
// bind, why.
func claimOutcome(sbc *v1alpha1.SandboxClaim) (bool, error) {
	switch sbc.Status.Phase {
	case v1alpha1.ClaimBound:
		return true, nil
	case v1alpha1.ClaimFailed, v1alpha1.ClaimExpired:
		return true, ClaimError(sbc)
	}
	return false, nil
}

// ClaimError is the error of a claim that is not bound: ErrExpired,
// ErrNoSandbox, ErrFailed or ErrNotBound, with the controller's message.
func ClaimError(sbc *v1alpha1.SandboxClaim) error {
	reason, msg := "", ""
	if cond := meta.FindStatusCondition(sbc.Status.Conditions, v1alpha1.ConditionBound); cond != nil {
		reason, msg = cond.Reason, cond.Message
	}
	base := ErrNotBound
	switch {
	case sbc.Status.Phase == v1alpha1.ClaimExpired:
		base = ErrExpired
	case sbc.Status.Phase == v1alpha1.ClaimFailed && reason == v1alpha1.ReasonNoWarmPod:
		base = ErrNoSandbox
	case sbc.Status.Phase == v1alpha1.ClaimFailed:
		base = ErrFailed
	}
	if msg == "" {
		return fmt.Errorf("claim %s/%s (phase %q): %w", sbc.Namespace, sbc.Name, sbc.Status.Phase, base)
	}
	return fmt.Errorf("claim %s/%s: %s (%s): %w", sbc.Namespace, sbc.Name, msg, reason, base)
}

// Open returns the sandbox of a bound claim, for its claimant's token.
// t "" means Config.Transport.
func (c *Client) Open(ctx context.Context, namespace, name, token string, t Transport) (*Sandbox, error) {
	sbc, err := c.Get(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	if sbc.Status.Phase != v1alpha1.ClaimBound {
		return nil, ClaimError(sbc)
	}
	if sbc.Spec.Auth.TokenSHA256 != "" && sbc.Spec.Auth.TokenSHA256 != TokenSHA256(token) {
		return nil, fmt.Errorf("opening claim %s/%s: the token given is not the claim's (its SHA-256 differs from spec.auth.tokenSHA256)", namespace, name)
	}
	return c.sandbox(sbc, token, t)
}

// Get returns the SandboxClaim namespace/name.
func (c *Client) Get(ctx context.Context, namespace, name string) (*v1alpha1.SandboxClaim, error) {
	var sbc v1alpha1.SandboxClaim
	if err := c.kube.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &sbc); err != nil {
		return nil, fmt.Errorf("getting claim %s/%s: %w", namespace, name, err)
	}
	return &sbc, nil
}

// List returns the SandboxClaims of namespace ("" for all namespaces).
func (c *Client) List(ctx context.Context, namespace string) ([]v1alpha1.SandboxClaim, error) {
	var l v1alpha1.SandboxClaimList
	if err := c.kube.List(ctx, &l, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing sandbox claims: %w", err)
	}
	return l.Items, nil
}

// Pools lists the SandboxPools of namespace ("" for all namespaces).
func (c *Client) Pools(ctx context.Context, namespace string) ([]v1alpha1.SandboxPool, error) {
	var l v1alpha1.SandboxPoolList
	if err := c.kube.List(ctx, &l, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("listing sandbox pools: %w", err)
	}
	return l.Items, nil
}

// PoolPods lists the pods of the pool named pool in namespace ("" for all
// namespaces; pool "" for every pool): the pods carrying its
// sandbox.io/pool label, warm, claimed and cold. Unlike the rest of the
// Client it needs RBAC to list pods, which a claimant has no need of: it is
// for the people running the pools (pool.State tells a pod's state).
func (c *Client) PoolPods(ctx context.Context, namespace, pool string) ([]corev1.Pod, error) {
	sel := labels.NewSelector()
	op, values := selection.Exists, []string(nil)
	if pool != "" {
		op, values = selection.Equals, []string{pool}
	}
	req, err := labels.NewRequirement(v1alpha1.LabelPool, op, values)
	if err != nil {
		return nil, fmt.Errorf("selecting the pods of pool %q: %w", pool, err)
	}
	var l corev1.PodList
	if err := c.kube.List(ctx, &l, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel.Add(*req)}); err != nil {
		return nil, fmt.Errorf("listing pool pods: %w", err)
	}
	return l.Items, nil
}

// Release deletes the claim; its sandbox goes with it.
func (c *Client) Release(ctx context.Context, namespace, name string) error {
	sbc := &v1alpha1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := c.kube.Delete(ctx, sbc); err != nil {
		return fmt.Errorf("releasing claim %s/%s: %w", namespace, name, err)
	}
	return nil
}

// Extend sets the sandbox's lifetime so that it ends d from now (from
// binding for a claim not bound yet).
func (c *Client) Extend(ctx context.Context, namespace, name string, d time.Duration) (*v1alpha1.SandboxClaim, error) {
	if d <= 0 {
		return nil, fmt.Errorf("extending claim %s/%s: the extension %s is not positive", namespace, name, d)
	}
	sbc, err := c.Get(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	if sbc.Status.Finished() {
		return nil, ClaimError(sbc)
	}
	secs := int64((d + time.Second - 1) / time.Second)
	if sbc.Status.BoundAt != nil {
		secs += int64(time.Since(sbc.Status.BoundAt.Time) / time.Second)
	}
	patch := client.MergeFrom(sbc.DeepCopy())
	sbc.Spec.ActiveDeadlineSeconds = &secs
	if err := c.kube.Patch(ctx, sbc, patch); err != nil {
		return nil, fmt.Errorf("extending claim %s/%s: %w", namespace, name, err)
	}
	return sbc, nil
}

// sandbox builds the Sandbox of a bound claim.
func (c *Client) sandbox(sbc *v1alpha1.SandboxClaim, token string, t Transport) (*Sandbox, error) {
	if t == "" {
		t = c.cfg.Transport
	}
	st := sbc.Status
	sb := &Sandbox{
		Claim: sbc.Name, Namespace: sbc.Namespace, Pool: sbc.Spec.PoolName,
		Pod: st.PodName, Node: st.NodeName, PodIP: st.PodIP, Port: st.RunnerPort,
		Origin: st.Origin, Token: token, Transport: t,
	}
	if st.ExpiresAt != nil {
		sb.ExpiresAt = st.ExpiresAt.Time
	}
	switch t {
	case TransportProxy:
		u, _, err := rest.DefaultServerUrlFor(c.rest)
		if err != nil {
			return nil, fmt.Errorf("reading the API server address: %w", err)
		}
		sb.Address = u.JoinPath("api", "v1", "namespaces", sb.Namespace, "pods", sb.Pod+":"+strconv.Itoa(int(sb.Port)), "proxy").String()
		sb.runner = runnerclient.New(sb.Address, token, c.proxy)
		sb.runner.ViaProxy = true
	case TransportDirect:
		if sb.PodIP == "" || sb.Port == 0 {
			return nil, fmt.Errorf("claim %s/%s is bound but has no pod IP and runner port", sbc.Namespace, sbc.Name)
		}
		sb.Address = "http://" + net.JoinHostPort(sb.PodIP, strconv.Itoa(int(sb.Port)))
		sb.runner = runnerclient.New(sb.Address, token, c.cfg.HTTPClient)
	default:
		return nil, fmt.Errorf("opening claim %s/%s: %w", sbc.Namespace, sbc.Name, fmt.Errorf("transport %q is not %s or %s", t, TransportDirect, TransportProxy))
	}
	return sb, nil
}

// NewToken returns a random claimant token.
func NewToken() (string, error) {
	b := make([]byte, TokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a claimant token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// TokenSHA256 is the lower-case hex SHA-256 of token, as
// spec.auth.tokenSHA256 holds it.
func TokenSHA256(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
