package claim

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"sandbox.io/injector/api/v1alpha1"
)

// RunnerPortName is the name of the container port the webhook gives the
// runner of a pod's first wrapped container (webhook.PortName); the claim
// reaches the runner there.
const RunnerPortName = "sandbox-runner"

// DefaultTokenSecret is the chart's default name of the Secret holding the
// runner token of pods without the sandbox.io/token-secret annotation
// (chart value runner.tokenSecretName).
const DefaultTokenSecret = "sandbox-runner-token"

// Client-side rate limits of a Claimer's requests to the API server when
// the rest.Config sets none (client-go's default is 5/s with bursts of 10).
const (
	DefaultQPS   = 200
	DefaultBurst = 400
)

// Transport is how the claimer reaches a pod's runner.
type Transport string

const (
	// TransportDirect dials the pod IP and runner port: the fastest, and
	// what a program inside the cluster uses.
	TransportDirect Transport = "direct"
	// TransportProxy goes through the API server's pod proxy
	// (pods/NAME:PORT/proxy) with the claimer's own credentials: it works
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

// Config configures a Claimer. The zero value of each field means its
// documented default.
type Config struct {
	// TokenSecret is the Secret name holding the pool token of pods without
	// the sandbox.io/token-secret annotation; default DefaultTokenSecret.
	TokenSecret string
	// Transport is how claims and Open reach runners unless Options say
	// otherwise; default TransportDirect.
	Transport Transport
	// HTTPClient reaches runners directly (TransportDirect); default a
	// client with its own copy of http.DefaultTransport. TransportProxy
	// always uses a client built from the rest.Config.
	HTTPClient *http.Client
	// ProbeTimeout bounds the GET /healthz that checks a candidate's runner
	// answers before the claim takes it; default 1s.
	ProbeTimeout time.Duration
	// ColdTimeout bounds how long a cold fallback waits for its pod to be
	// Ready with a runner answering; default 3m.
	ColdTimeout time.Duration
	// Claimant is the default Options.Claimant; default "USER@HOST" of this
	// process.
	Claimant string
	// Registerer, when set, receives the claim metrics
	// (sandbox_claim_total, sandbox_claim_duration_seconds); nothing is
	// registered globally.
	Registerer prometheus.Registerer
	// Logger receives one line per claim and per lost race (debug); default
	// discards.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.TokenSecret == "" {
		c.TokenSecret = DefaultTokenSecret
	}
	if c.Transport == "" {
		c.Transport = TransportDirect
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = time.Second
	}
	if c.ColdTimeout == 0 {
		c.ColdTimeout = 3 * time.Minute
	}
	if c.Claimant == "" {
		c.Claimant = defaultClaimant()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	var errs []error
	if _, err := ParseTransport(string(c.Transport)); err != nil {
		errs = append(errs, err)
	}
	if c.ProbeTimeout < 0 {
		errs = append(errs, fmt.Errorf("probe timeout %s is negative", c.ProbeTimeout))
	}
	if c.ColdTimeout < 0 {
		errs = append(errs, fmt.Errorf("cold timeout %s is negative", c.ColdTimeout))
	}
	return errors.Join(errs...)
}

func defaultClaimant() string {
	user := os.Getenv("USER")
	if user == "" {
		user = fmt.Sprintf("uid%d", os.Getuid())
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return user
	}
	return user + "@" + host
}

// Claimer claims, opens and releases sandboxes. It is safe for concurrent
// use; one Claimer serves any number of claims.
type Claimer struct {
	cfg     Config
	rest    *rest.Config
	kube    kubernetes.Interface
	pools   rest.Interface // sandbox.io/v1alpha1
	proxy   *http.Client
	metrics *metrics
}

// New returns a Claimer that talks to the API server of restCfg (with
// DefaultQPS and DefaultBurst when restCfg sets no rate limit).
func New(restCfg *rest.Config, cfg Config) (*Claimer, error) {
	if restCfg == nil {
		return nil, errors.New("building claimer: rest config is nil")
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("building claimer: %w", err)
	}
	// client-go's default client-side limit (5 requests/s, bursts of 10)
	// would make a claim, five requests, wait for seconds under load: a
	// claim is a latency-bound burst, so allow far more unless the caller
	// chose a limit.
	restCfg = rest.CopyConfig(restCfg)
	if restCfg.QPS == 0 && restCfg.RateLimiter == nil {
		restCfg.QPS, restCfg.Burst = DefaultQPS, DefaultBurst
	}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("building kubernetes client: %w", err)
	}
	// SandboxPools through a plain REST client: a library should not
	// need its caller to set controller-runtime's global logger.
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building scheme: %w", err)
	}
	poolCfg := rest.CopyConfig(restCfg)
	poolCfg.GroupVersion = &v1alpha1.GroupVersion
	poolCfg.APIPath = "/apis"
	poolCfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	pools, err := rest.RESTClientFor(poolCfg)
	if err != nil {
		return nil, fmt.Errorf("building the sandboxpools client: %w", err)
	}
	proxy, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		return nil, fmt.Errorf("building API server HTTP client: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Claimer{cfg: cfg, rest: restCfg, kube: kube, pools: pools, proxy: proxy, metrics: m}, nil
}
