package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Defaults of Config.
const (
	DefaultCALifetime       = 10 * 365 * 24 * time.Hour
	DefaultServingLifetime  = 365 * 24 * time.Hour
	DefaultSyncInterval     = 5 * time.Second
	DefaultPropagationDelay = 10 * time.Second
	DefaultCAOverlap        = 24 * time.Hour
)

// ManagedByLabel marks the Secret as written by this package.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// Config says which certificates a Rotator keeps and where.
type Config struct {
	// Namespace holds the Secret (the webhook's own namespace). Required.
	Namespace string
	// SecretName is the certificate Secret. Required.
	SecretName string
	// WebhookConfigName is the MutatingWebhookConfiguration whose webhooks'
	// caBundle the Rotator writes. Required.
	WebhookConfigName string
	// ServiceName adds the DNS names <svc>.<ns>.svc and
	// <svc>.<ns>.svc.cluster.local to the serving certificate.
	ServiceName string
	// ExtraSANs are more DNS names or IP addresses of the serving
	// certificate. ServiceName or ExtraSANs must give at least one.
	ExtraSANs []string
	// CALifetime defaults to DefaultCALifetime (10 years).
	CALifetime time.Duration
	// ServingLifetime defaults to DefaultServingLifetime (1 year); at most
	// CALifetime.
	ServingLifetime time.Duration
	// RenewBefore is how long before expiry a certificate is renewed;
	// zero (the default) means a third of its lifetime.
	RenewBefore time.Duration
	// SyncInterval is how often the Secret and the webhook configuration are
	// read; defaults to DefaultSyncInterval (5s).
	SyncInterval time.Duration
	// PropagationDelay is how long a new CA must have been in the webhook
	// configuration before a serving certificate it signed is served, so
	// that every API server's informer has seen it; defaults to
	// DefaultPropagationDelay (10s).
	PropagationDelay time.Duration
	// CAOverlap is how long the previous CA stays in the caBundle after a
	// rotation, counted from when a serving certificate of the new CA is
	// issued; then only the new CA is trusted, so that a rotation retires a
	// CA that may have leaked. Defaults to DefaultCAOverlap (24h); at least
	// PropagationDelay plus two SyncIntervals, so that every replica serves
	// the new certificate before the old CA goes.
	CAOverlap time.Duration
}

func (c *Config) setDefaults() {
	if c.CALifetime == 0 {
		c.CALifetime = DefaultCALifetime
	}
	if c.ServingLifetime == 0 {
		c.ServingLifetime = DefaultServingLifetime
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.PropagationDelay == 0 {
		c.PropagationDelay = DefaultPropagationDelay
	}
	if c.CAOverlap == 0 {
		c.CAOverlap = DefaultCAOverlap
	}
}

// SANs returns the serving certificate's DNS names and IP addresses.
func (c *Config) SANs() []string {
	var sans []string
	if c.ServiceName != "" {
		sans = append(sans, fmt.Sprintf("%s.%s.svc", c.ServiceName, c.Namespace),
			fmt.Sprintf("%s.%s.svc.cluster.local", c.ServiceName, c.Namespace))
	}
	return append(sans, c.ExtraSANs...)
}

// Validate reports every problem of c, after defaults.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	for name, v := range map[string]string{"namespace": c.Namespace, "secret name": c.SecretName, "webhook configuration name": c.WebhookConfigName} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	if len(c.SANs()) == 0 {
		errs = append(errs, errors.New("a service name or an extra SAN is required"))
	}
	for _, s := range c.ExtraSANs {
		if s == "" || (net.ParseIP(s) == nil && len(s) > 253) {
			errs = append(errs, fmt.Errorf("extra SAN %q is not a DNS name or IP address", s))
		}
	}
	if c.CALifetime < 0 || c.ServingLifetime < 0 || c.ServingLifetime > c.CALifetime {
		errs = append(errs, fmt.Errorf("lifetimes: serving %s must be positive and at most the CA's %s", c.ServingLifetime, c.CALifetime))
	}
	if c.RenewBefore < 0 || c.RenewBefore >= c.ServingLifetime {
		errs = append(errs, fmt.Errorf("renew-before %s must be positive and shorter than the serving lifetime %s", c.RenewBefore, c.ServingLifetime))
	}
	if c.SyncInterval < 0 || c.PropagationDelay < 0 {
		errs = append(errs, errors.New("sync interval and propagation delay must be positive"))
	}
	if least := c.PropagationDelay + 2*c.SyncInterval; c.CAOverlap < least {
		errs = append(errs, fmt.Errorf("ca overlap %s must be at least the propagation delay plus two sync intervals (%s), so that every replica serves the new certificate before the old CA goes", c.CAOverlap, least))
	}
	return errors.Join(errs...)
}

// Options are the Rotator's collaborators.
type Options struct {
	// Reader reads the Secret and the webhook configuration; it should not
	// be a cache (a cache would list and watch every Secret). SetupWithManager
	// uses the manager's API reader when nil.
	Reader client.Reader
	// Writer creates and updates the Secret and patches the webhook
	// configuration. SetupWithManager uses the manager's client when nil.
	Writer client.Writer
	// Recorder records Events on the Secret; nil records none.
	// SetupWithManager uses the manager's recorder "sandbox-webhook" when nil.
	Recorder events.EventRecorder
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Logger: nil discards.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Rotator keeps the certificate Secret, the webhook configuration's caBundle
// and the certificate served in memory in step. Create it with New, pass
// TLSOpt to the webhook server's TLSOpts, and run it with SetupWithManager
// (or Start).
type Rotator struct {
	cfg     Config
	policy  Policy
	opts    Options
	log     *slog.Logger
	metrics *Metrics

	serving    sync.Mutex // guards the fields below
	loaded     *tls.Certificate
	trustedNow []*x509.Certificate // the caBundle last read from the webhook configuration

	trustedSince map[Fingerprint]time.Time // only touched by the sync loop
}

var _ manager.LeaderElectionRunnable = (*Rotator)(nil)

// New returns a Rotator for cfg.
func New(cfg Config, opts Options) (*Rotator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("certificate configuration: %w", err)
	}
	cfg.setDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Rotator{
		cfg: cfg,
		policy: Policy{
			CAName:      cfg.SecretName + "-ca",
			SANs:        cfg.SANs(),
			CALifetime:  cfg.CALifetime,
			RenewBefore: cfg.RenewBefore, ServingLifetime: cfg.ServingLifetime,
			CAOverlap: cfg.CAOverlap,
		},
		opts:         opts,
		log:          opts.Logger.With("secret", cfg.SecretName, "namespace", cfg.Namespace),
		metrics:      NewMetrics(opts.Registerer),
		trustedSince: map[Fingerprint]time.Time{},
	}, nil
}

// TLSOpt makes a TLS server take its certificate from r; pass it in
// controller-runtime's webhook.Options.TLSOpts.
func (r *Rotator) TLSOpt(c *tls.Config) { c.GetCertificate = r.GetCertificate }

// GetCertificate returns the serving certificate loaded last.
func (r *Rotator) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.serving.Lock()
	defer r.serving.Unlock()
	if r.loaded == nil {
		return nil, errors.New("no serving certificate loaded yet")
	}
	return r.loaded, nil
}

// ReadyChecker passes once a serving certificate is loaded and the webhook
// configuration's caBundle, as last read, verifies it.
func (r *Rotator) ReadyChecker() healthz.Checker {
	return func(*http.Request) error {
		r.serving.Lock()
		defer r.serving.Unlock()
		if r.loaded == nil {
			return errors.New("no serving certificate loaded yet")
		}
		if !Verifies(r.trustedNow, r.loaded.Leaf, r.opts.Now()) {
			return fmt.Errorf("the caBundle of mutating webhook configuration %s does not verify the serving certificate yet", r.cfg.WebhookConfigName)
		}
		return nil
	}
}

// SetupWithManager fills the unset Options from mgr, runs r with mgr (on
// every replica, not only the leader) and adds it as the readiness check
// "certs".
func (r *Rotator) SetupWithManager(mgr manager.Manager) error {
	if r.opts.Reader == nil {
		r.opts.Reader = mgr.GetAPIReader()
	}
	if r.opts.Writer == nil {
		r.opts.Writer = mgr.GetClient()
	}
	if r.opts.Recorder == nil {
		r.opts.Recorder = mgr.GetEventRecorder("sandbox-webhook")
	}
	if err := mgr.Add(r); err != nil {
		return fmt.Errorf("adding the certificate rotator: %w", err)
	}
	if err := mgr.AddReadyzCheck("certs", r.ReadyChecker()); err != nil {
		return fmt.Errorf("adding the certificate readiness check: %w", err)
	}
	return nil
}

// NeedLeaderElection is false: every replica loads its own certificate.
func (r *Rotator) NeedLeaderElection() bool { return false }

// ErrLostRace is returned (wrapped) by Sync when another replica wrote the
// Secret or the webhook configuration between our read and our write; the
// next pass adopts what it wrote. Start retries at once.
var ErrLostRace = errors.New("lost a race with another writer")

var errNoClient = errors.New("certificate rotator has no API client: use SetupWithManager or set Options.Reader and Writer")

// Start syncs every SyncInterval until ctx ends, at once after a lost race.
func (r *Rotator) Start(ctx context.Context) error {
	if r.opts.Reader == nil || r.opts.Writer == nil {
		return errNoClient
	}
	r.log.Info("certificate rotator starting", "webhookConfiguration", r.cfg.WebhookConfigName, "sans", r.policy.SANs)
	retries := 0
	for {
		wait := r.cfg.SyncInterval
		err := r.Sync(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrLostRace) && retries < 5:
			retries++
			wait = time.Duration(retries) * 50 * time.Millisecond
			r.log.Debug("certificate sync lost a race, retrying", "err", err)
		case err != nil:
			retries = 0
			r.log.Warn("certificate sync", "err", err)
		default:
			retries = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (r *Rotator) trusted(ca *x509.Certificate) bool {
	since, ok := r.trustedSince[FingerprintOf(ca)]
	return ok && r.opts.Now().Sub(since) >= r.cfg.PropagationDelay
}

// Sync is one pass of what Start repeats: converge the Secret, then the
// certificate in memory, then the webhook configuration. Passes must not run
// concurrently on one Rotator.
func (r *Rotator) Sync(ctx context.Context) error {
	if r.opts.Reader == nil || r.opts.Writer == nil {
		return errNoClient
	}
	now := r.opts.Now()
	key := types.NamespacedName{Namespace: r.cfg.Namespace, Name: r.cfg.SecretName}
	var sec corev1.Secret
	data, err := r.readSecret(ctx, key, &sec)
	if err != nil {
		return err
	}
	if data, err = r.convergeSecret(ctx, &sec, data, now); err != nil {
		return err
	}
	st, caErr, servingErr := ParseSecret(data, now)
	if caErr != nil {
		return fmt.Errorf("secret %s after sync: %w", key, caErr)
	}
	r.metrics.Expiry.WithLabelValues("ca").Set(float64(st.Signer.Cert.NotAfter.Unix()))
	// Load first: a certificate the webhook configuration does not trust yet
	// still lets the server start; readiness waits for the caBundle.
	var loadErr error
	if servingErr != nil {
		loadErr = fmt.Errorf("secret %s after sync: %w", key, servingErr)
	} else {
		loadErr = r.load(st.Serving)
	}
	trusted, err := r.syncWebhookConfig(ctx, &st, now)
	if err != nil {
		// Keep the last bundle read: an API server hiccup must not turn every
		// replica unready at once.
		return errors.Join(loadErr, err)
	}
	r.rememberTrusted(trusted, now)
	return loadErr
}

// readSecret reads the certificate Secret into sec and returns its data:
// nil when the Secret does not exist, never nil when it does.
func (r *Rotator) readSecret(ctx context.Context, key types.NamespacedName, sec *corev1.Secret) (map[string][]byte, error) {
	switch err := r.opts.Reader.Get(ctx, key, sec); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading secret %s: %w", key, err)
	}
	if sec.Data == nil {
		return map[string][]byte{}, nil
	}
	return sec.Data, nil
}

// convergeSecret writes the Secret's next state (Policy.Next) when it has
// one, and returns the data the Secret holds afterwards.
func (r *Rotator) convergeSecret(ctx context.Context, sec *corev1.Secret, data map[string][]byte, now time.Time) (map[string][]byte, error) {
	next, changes, waiting, err := r.policy.Next(data, now, r.trusted)
	if err != nil {
		return nil, err
	}
	if waiting != "" {
		r.log.Info("certificate rotation waiting", "why", waiting, "propagationDelay", r.cfg.PropagationDelay)
	}
	if next == nil {
		return data, nil
	}
	if err := r.write(ctx, sec, data == nil, next); err != nil {
		return nil, err
	}
	for _, c := range changes {
		r.record(sec, c)
	}
	return next.Data(), nil
}

// record counts, logs and reports as an Event on sec one change written.
func (r *Rotator) record(sec *corev1.Secret, c Change) {
	switch {
	case c.Reason == ReasonExpiredCAsPruned, c.Reason == ReasonPreviousCAsRetired:
	case c.Certificate == "ca" && (c.Reason == ReasonCreated || c.Reason == ReasonReplaced):
		// A new CA comes with a new serving certificate.
		r.metrics.Rotations.WithLabelValues("ca").Inc()
		r.metrics.Rotations.WithLabelValues("serving").Inc()
	default:
		r.metrics.Rotations.WithLabelValues(c.Certificate).Inc()
	}
	eventType, log := corev1.EventTypeNormal, r.log.Info
	if c.Warning {
		eventType, log = corev1.EventTypeWarning, r.log.Warn
	}
	log("certificate secret changed", "reason", c.Reason, "note", c.Note)
	if r.opts.Recorder != nil {
		r.opts.Recorder.Eventf(sec, nil, eventType, c.Reason, "Rotate", "%s", c.Note)
	}
}

// rememberTrusted keeps the caBundle the webhook configuration holds now,
// and since when each of its CAs is in it (what trusted measures).
func (r *Rotator) rememberTrusted(trusted []*x509.Certificate, now time.Time) {
	r.serving.Lock()
	r.trustedNow = trusted
	r.serving.Unlock()
	seen := map[Fingerprint]bool{}
	for _, c := range trusted {
		fp := FingerprintOf(c)
		seen[fp] = true
		if _, ok := r.trustedSince[fp]; !ok {
			r.trustedSince[fp] = now
		}
	}
	for fp := range r.trustedSince {
		if !seen[fp] {
			delete(r.trustedSince, fp)
		}
	}
}

func (r *Rotator) write(ctx context.Context, sec *corev1.Secret, create bool, next *State) error {
	if create {
		*sec = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: r.cfg.Namespace, Name: r.cfg.SecretName,
				Labels: map[string]string{ManagedByLabel: "sandbox-webhook"}},
			Type: corev1.SecretTypeTLS,
			Data: next.Data(),
		}
		if err := r.opts.Writer.Create(ctx, sec); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating secret %s/%s: %w", sec.Namespace, sec.Name, ErrLostRace)
			}
			return fmt.Errorf("creating secret %s/%s: %w", sec.Namespace, sec.Name, err)
		}
		return nil
	}
	sec.Data = next.Data()
	if err := r.opts.Writer.Update(ctx, sec); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("updating secret %s/%s: %w", sec.Namespace, sec.Name, ErrLostRace)
		}
		return fmt.Errorf("updating secret %s/%s: %w", sec.Namespace, sec.Name, err)
	}
	return nil
}

// syncWebhookConfig makes the caBundle of every webhook of the configuration
// the union of st's bundle and what any of them trusts now, minus expired
// certificates and minus CAs older than st's that the rotation retired
// (Policy.KeepsOther), and returns the bundle all of them trust afterwards.
func (r *Rotator) syncWebhookConfig(ctx context.Context, st *State, now time.Time) ([]*x509.Certificate, error) {
	bundle := st.Bundle
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := r.opts.Reader.Get(ctx, types.NamespacedName{Name: r.cfg.WebhookConfigName}, &mwc); err != nil {
		return nil, fmt.Errorf("reading mutating webhook configuration %s: %w", r.cfg.WebhookConfigName, err)
	}
	if len(mwc.Webhooks) == 0 {
		return nil, fmt.Errorf("mutating webhook configuration %s has no webhooks", r.cfg.WebhookConfigName)
	}
	current := make([][]*x509.Certificate, len(mwc.Webhooks))
	all := [][]*x509.Certificate{bundle}
	for i, wh := range mwc.Webhooks {
		current[i] = ParseLenient(wh.ClientConfig.CABundle)
		var kept []*x509.Certificate
		for _, c := range current[i] {
			if Contains(bundle, c) || r.policy.KeepsOther(st, c, now) {
				kept = append(kept, c)
			}
		}
		all = append(all, kept)
	}
	want := MergeBundle(now, all...)
	stale := false
	for i := range current {
		if !SameSet(current[i], want) {
			stale = true
		}
	}
	if !stale {
		return want, nil
	}
	// A JSON patch that touches only the caBundles, and only if nobody
	// changed the configuration since we read it.
	encoded := base64.StdEncoding.EncodeToString(EncodeBundle(want))
	ops := []map[string]any{{"op": "test", "path": "/metadata/resourceVersion", "value": mwc.ResourceVersion}}
	for i, wh := range mwc.Webhooks {
		ops = append(ops,
			map[string]any{"op": "test", "path": fmt.Sprintf("/webhooks/%d/name", i), "value": wh.Name},
			map[string]any{"op": "add", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), "value": encoded})
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encoding caBundle patch: %w", err)
	}
	if err := r.opts.Writer.Patch(ctx, &mwc, client.RawPatch(types.JSONPatchType, raw)); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsInvalid(err) || apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("patching caBundle of mutating webhook configuration %s: %w: %w", r.cfg.WebhookConfigName, ErrLostRace, err)
		}
		return nil, fmt.Errorf("patching caBundle of mutating webhook configuration %s: %w", r.cfg.WebhookConfigName, err)
	}
	r.log.Info("webhook caBundle written", "webhookConfiguration", r.cfg.WebhookConfigName, "cas", len(want))
	return want, nil
}

func (r *Rotator) load(kp *KeyPair) error {
	r.serving.Lock()
	defer r.serving.Unlock()
	if r.loaded != nil && r.loaded.Leaf.Equal(kp.Cert) {
		return nil
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return fmt.Errorf("loading serving certificate: %w", err)
	}
	r.loaded = &cert
	r.metrics.Expiry.WithLabelValues("serving").Set(float64(kp.Cert.NotAfter.Unix()))
	r.log.Info("serving certificate loaded", "serial", kp.Cert.SerialNumber.Text(16), "notAfter", kp.Cert.NotAfter.UTC())
	return nil
}

// Metrics returns r's metrics.
func (r *Rotator) Metrics() *Metrics { return r.metrics }
