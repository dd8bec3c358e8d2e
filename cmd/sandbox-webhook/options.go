package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/certs"
	"sandbox.io/injector/claim/controller"
	"sandbox.io/injector/internal/logging"
	"sandbox.io/injector/runner/api"
	"sandbox.io/injector/webhook"
)

// options are the command line of sandbox-webhook; every flag can also be
// set through its SANDBOX_* environment variable.
type options struct {
	kubeconfig          string
	certDir             string
	port                int
	metricsBindAddress  string
	healthProbeAddress  string
	runnerImage         string
	runnerPort          int
	tokenSecret         string
	releaseNamespace    string
	excludedNamespaces  string
	insecureRegistries  string
	registryPrivate     bool
	entrypointTimeout   time.Duration
	disableImageLookups bool
	injectionMethod     string
	logLevel            string

	// Serving certificates: files in certDir (cert-manager, Helm) or self-managed (certs/).
	certMode           string
	certSecret         string
	webhookConfigName  string
	serviceName        string
	certExtraSANs      string
	caLifetime         time.Duration
	certLifetime       time.Duration
	certRenewBefore    time.Duration
	certSyncInterval   time.Duration
	caPropagationDelay time.Duration
	caOverlap          time.Duration

	// Claims: the SandboxClaim controller, leader-elected among replicas.
	claims              bool
	claimKeySecret      string
	claimConcurrency    int
	claimFinishedTTL    time.Duration
	claimRelabelOnTake  bool
	claimUnheldKeyGrace time.Duration
	claimColdTimeout    time.Duration
	leaderLeaseDuration time.Duration

	// Pool isolation controllers (isolation.go).
	isolation isolationOptions
	// shutdownDelay is how long the webhook drains after SIGTERM at least,
	// drainTimeout at most (webhook.Drain.After).
	shutdownDelay time.Duration
	drainTimeout  time.Duration
}

// Values of --cert-mode.
const (
	certModeFiles = "files"
	certModeSelf  = "self"
)

func (o *options) AddFlags(fs *flag.FlagSet) {
	o.isolation.addFlags(fs)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to a kubeconfig; empty uses KUBECONFIG or the in-cluster configuration.")
	fs.StringVar(&o.certDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Directory with tls.crt and tls.key; reloaded when they change.")
	fs.IntVar(&o.port, "port", 9443, "HTTPS port of the admission webhook.")
	fs.StringVar(&o.metricsBindAddress, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 turns it off.")
	fs.StringVar(&o.healthProbeAddress, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz.")
	fs.DurationVar(&o.shutdownDelay, "shutdown-delay", 0, "After SIGTERM, how long the webhook keeps answering at least, closing each connection after its answer (HTTP/2: GOAWAY) and failing /readyz, before it stops: the API server moves to other replicas without losing an admission.")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 0, "After SIGTERM and --shutdown-delay, the webhook stops once the API server has closed every connection to it (it closes one idle for 90 s), or this long after SIGTERM at the latest; a server that closes an idle connection itself races the API server's next admission on it. 0 stops right after --shutdown-delay.")
	fs.StringVar(&o.runnerImage, "runner-image", "", "Image holding the runner at "+webhook.ImageRunnerPath+" (required).")
	fs.IntVar(&o.runnerPort, "runner-port", api.DefaultPort, "Port of the first wrapped container's runner.")
	fs.StringVar(&o.tokenSecret, "token-secret", api.DefaultTokenSecret, "Default Secret holding the runner API token, in each pod's namespace.")
	fs.StringVar(&o.releaseNamespace, "release-namespace", "", "The webhook's own namespace; never injected.")
	fs.StringVar(&o.excludedNamespaces, "excluded-namespaces", strings.Join(webhook.DefaultExcludedNamespaces, ","), "Comma-separated namespaces that are never injected.")
	fs.StringVar(&o.insecureRegistries, "insecure-registries", "", "Comma-separated registries (host:port) read over plain HTTP when looking up image entrypoints; they may also be on private and loopback addresses.")
	fs.BoolVar(&o.registryPrivate, "registry-allow-private", false, "Let image lookups reach registries on private and loopback addresses (by default only those in --insecure-registries may); link-local and cloud metadata addresses are always refused.")
	fs.DurationVar(&o.entrypointTimeout, "entrypoint-timeout", webhook.DefaultEntrypointTimeout, "Time one admission may spend reading image ENTRYPOINT/CMD from registries.")
	fs.StringVar(&o.injectionMethod, "injection-method", v1alpha1.MethodAuto, "How the runner reaches containers: auto (an image volume where the pod's node, or every node, is labelled "+v1alpha1.LabelImageVolume+"=true; else copy), copy (an init container copies it) or imageVolume.")
	fs.BoolVar(&o.disableImageLookups, "disable-image-lookups", false, "Never read images from registries; containers without a command get a runner with no child.")
	fs.StringVar(&o.logLevel, "log-level", "info", "Log level: debug, info, warn or error.")

	fs.StringVar(&o.certMode, "cert-mode", certModeFiles, "Where the serving certificate comes from: files (tls.crt and tls.key in --cert-dir, filled by cert-manager or Helm) or self (a CA and certificate this webhook keeps in --cert-secret and rotates, writing the caBundle of --webhook-config-name).")
	fs.StringVar(&o.certSecret, "cert-secret", "sandbox-injector-serving-cert", "Self mode: the Secret in --release-namespace holding the CA and serving certificate.")
	fs.StringVar(&o.webhookConfigName, "webhook-config-name", "sandbox-injector", "Self mode: the MutatingWebhookConfiguration whose caBundle this webhook writes.")
	fs.StringVar(&o.serviceName, "service-name", "sandbox-injector", "Self mode: the webhook Service; the certificate names <service>.<namespace>.svc and .svc.cluster.local.")
	fs.StringVar(&o.certExtraSANs, "cert-extra-sans", "", "Self mode: comma-separated extra DNS names or IP addresses of the serving certificate.")
	fs.DurationVar(&o.caLifetime, "ca-lifetime", certs.DefaultCALifetime, "Self mode: lifetime of the CA.")
	fs.DurationVar(&o.certLifetime, "cert-lifetime", certs.DefaultServingLifetime, "Self mode: lifetime of the serving certificate (at most --ca-lifetime).")
	fs.DurationVar(&o.certRenewBefore, "cert-renew-before", 0, "Self mode: renew a certificate this long before it expires; 0 renews when a third of its lifetime remains.")
	fs.DurationVar(&o.certSyncInterval, "cert-sync-interval", certs.DefaultSyncInterval, "Self mode: how often the Secret and the webhook configuration are read.")
	fs.DurationVar(&o.caPropagationDelay, "ca-propagation-delay", certs.DefaultPropagationDelay, "Self mode: how long a new CA is in the caBundle before a certificate it signed is served.")
	fs.DurationVar(&o.caOverlap, "ca-overlap", certs.DefaultCAOverlap, "Self mode: how long the previous CA stays in the caBundle after a certificate of the new CA is served; then only the new CA is trusted (at least --ca-propagation-delay plus two --cert-sync-interval).")
	o.addClaimFlags(fs)
}

func (o *options) addClaimFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.claims, "claims", true, "Run the SandboxClaim controller (leader-elected among the replicas) and give pool pods claim verifiers.")
	fs.StringVar(&o.claimKeySecret, "claim-key-secret", "sandbox-injector-claim-key", "The Secret in --release-namespace holding the keys claim credentials derive from (key, and previous after a rotation); created when missing, followed without a restart. Nothing but this webhook may read it.")
	fs.IntVar(&o.claimConcurrency, "claim-concurrency", controller.DefaultConcurrency, "Claims bound at once.")
	fs.DurationVar(&o.claimFinishedTTL, "claim-finished-ttl", time.Hour, "How long a Failed or Expired claim is kept before it is deleted.")
	fs.DurationVar(&o.claimUnheldKeyGrace, "claim-unheld-key-grace", controller.DefaultUnheldKeyGrace, "How long after a warm pod's creation the leader must have read the claim key Secret, not finding the key the pod was injected under (one rotated away without being kept as previous), before it deletes the pod so that the node agent makes one it can hand out. 0 keeps such pods.")
	fs.BoolVar(&o.claimRelabelOnTake, "claim-relabel-on-take", true, "Also label a taken warm pod sandbox.io/state=claimed (and sandbox.io/origin=warm), which node agents and claim controllers of releases before the owner-reference take need. Off, a claim changes only the pod's owner reference and annotations: NetworkPolicy implementations have nothing to recompute per claim. Turn it off once every node agent and webhook replica runs this release or later, and on again before rolling back past it.")
	fs.DurationVar(&o.claimColdTimeout, "claim-cold-timeout", 3*time.Minute, "How long a cold pod made for a claim may take to be Ready before the claim fails.")
	fs.DurationVar(&o.leaderLeaseDuration, "leader-lease-duration", 10*time.Second, "Lease of the claim controller's leader; a standby takes over within about this long after the leader dies.")
}

func (o *options) Validate() error {
	var errs []error
	if o.runnerImage == "" {
		errs = append(errs, errors.New("--runner-image is required"))
	}
	if o.port < 1 || o.port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d is not in 1-65535", o.port))
	}
	if o.runnerPort < 1 || o.runnerPort > 65535 {
		errs = append(errs, fmt.Errorf("--runner-port %d is not in 1-65535", o.runnerPort))
	}
	if o.entrypointTimeout <= 0 || o.entrypointTimeout > 10*time.Second {
		errs = append(errs, fmt.Errorf("--entrypoint-timeout %s is not in (0, 10s]: the API server's webhook timeout is at most 30s and usually 5s", o.entrypointTimeout))
	}
	if _, err := logging.ParseLevel(o.logLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	switch o.injectionMethod {
	case v1alpha1.MethodAuto, v1alpha1.MethodCopy, v1alpha1.MethodImageVolume:
	default:
		errs = append(errs, fmt.Errorf("--injection-method %q is not %s, %s or %s", o.injectionMethod,
			v1alpha1.MethodAuto, v1alpha1.MethodCopy, v1alpha1.MethodImageVolume))
	}
	if o.claims {
		if o.releaseNamespace == "" {
			errs = append(errs, errors.New("--claims needs --release-namespace (where the claim key Secret and the leader lease live)"))
		}
		if o.claimKeySecret == "" {
			errs = append(errs, errors.New("--claims needs --claim-key-secret"))
		}
		if o.leaderLeaseDuration < 2*time.Second {
			errs = append(errs, fmt.Errorf("--leader-lease-duration %s is shorter than 2s", o.leaderLeaseDuration))
		}
		if o.claimConcurrency < 1 {
			errs = append(errs, fmt.Errorf("--claim-concurrency %d is not positive", o.claimConcurrency))
		}
	}
	if o.shutdownDelay < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-delay %s is negative", o.shutdownDelay))
	}
	if o.drainTimeout < 0 {
		errs = append(errs, fmt.Errorf("--drain-timeout %s is negative", o.drainTimeout))
	}
	switch o.certMode {
	case certModeFiles:
	case certModeSelf:
		if o.releaseNamespace == "" {
			errs = append(errs, errors.New("--cert-mode=self needs --release-namespace (where the certificate Secret lives)"))
		} else if err := o.certsConfig().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--cert-mode=self: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("--cert-mode %q is not files or self", o.certMode))
	}
	if o.claimUnheldKeyGrace < 0 {
		errs = append(errs, fmt.Errorf("--claim-unheld-key-grace %s is negative (0 keeps warm pods of unheld claim keys)", o.claimUnheldKeyGrace))
	}
	if err := o.isolation.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// unheldKeyGrace is controller.Options.UnheldKeyGrace of
// --claim-unheld-key-grace, where 0 keeps the pods.
func (o *options) unheldKeyGrace() time.Duration {
	if o.claimUnheldKeyGrace == 0 {
		return -1
	}
	return o.claimUnheldKeyGrace
}

func (o *options) config() webhook.Config {
	return webhook.Config{
		RunnerImage:        o.runnerImage,
		RunnerPort:         int32(o.runnerPort),
		TokenSecret:        o.tokenSecret,
		ReleaseNamespace:   o.releaseNamespace,
		ExcludedNamespaces: splitList(o.excludedNamespaces),
		EntrypointTimeout:  o.entrypointTimeout,
		Method:             o.injectionMethod,
	}
}

func (o *options) certsConfig() certs.Config {
	return certs.Config{
		Namespace:         o.releaseNamespace,
		SecretName:        o.certSecret,
		WebhookConfigName: o.webhookConfigName,
		ServiceName:       o.serviceName,
		ExtraSANs:         splitList(o.certExtraSANs),
		CALifetime:        o.caLifetime,
		ServingLifetime:   o.certLifetime,
		RenewBefore:       o.certRenewBefore,
		SyncInterval:      o.certSyncInterval,
		PropagationDelay:  o.caPropagationDelay,
		CAOverlap:         o.caOverlap,
	}
}

func (o *options) LogLevel() slog.Level {
	l, _ := logging.ParseLevel(o.logLevel)
	return l
}

func splitList(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
