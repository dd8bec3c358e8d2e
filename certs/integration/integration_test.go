package integration_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/certs"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/webhook"
)

// TestWithAPIServer runs the Rotator against a real kube-apiserver: replicas
// racing on an empty namespace, corrupt Secrets, and a CA rotation while pods
// are admitted through the API server.
func TestWithAPIServer(t *testing.T) {
	cfg := testenv.Start(t, &envtest.Environment{})
	cfg.QPS, cfg.Burst = 200, 400
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{cfg: cfg, scheme: scheme, c: c}
	t.Run("replicas race on an empty namespace", e.testRace)
	t.Run("forced write races", e.testForcedRaces)
	t.Run("corrupt secret is replaced with an event", e.testCorrupt)
	t.Run("rotation loses no admission", e.testRotation)
	t.Run("rotation retires the previous CA after the overlap", e.testRetire)
}

type env struct {
	cfg    *rest.Config
	scheme *runtime.Scheme
	c      client.Client
}

var seq atomic.Int64

func (e *env) namespace(t *testing.T, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, seq.Add(1))
	if err := e.c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// webhookConfig returns a configuration with two webhooks, like the chart's:
// the first calls url for opted-in pods of namespace ns, the second never
// matches anything (it only proves that every webhook gets the caBundle).
func webhookConfig(name, ns, url string) *admissionregistrationv1.MutatingWebhookConfiguration {
	path := url + webhook.Path
	common := func(whName string, sel *metav1.LabelSelector) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:                    whName,
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			// The API server's maximum: a rotation mistake shows at once as
			// an x509 error, while a 5s timeout on a loaded 2-core machine
			// running the race detector only measures the machine.
			TimeoutSeconds:     ptr.To[int32](30),
			ReinvocationPolicy: ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
			ClientConfig:       admissionregistrationv1.WebhookClientConfig{URL: &path},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector: sel,
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name:       "opted-in",
				Expression: "has(object.metadata.annotations) && object.metadata.annotations['sandbox.io/inject'] == 'true'",
			}},
		}
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			common("pod.sandbox.io", &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}),
			common("namespace.sandbox.io", &metav1.LabelSelector{MatchLabels: map[string]string{"certs.sandbox.io/never": "true"}}),
		},
	}
}

type replica struct {
	rot     *certs.Rotator
	metrics *prometheus.Registry
	port    int // webhook server port; 0 without one
}

// startReplica runs a manager with a Rotator for cc, and with the real
// admission webhook served on loopback with the Rotator's certificate when
// serve is true.
func (e *env) startReplica(t *testing.T, cc certs.Config, serve bool) *replica {
	t.Helper()
	reg := prometheus.NewRegistry()
	rot, err := certs.New(cc, certs.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	opts := manager.Options{
		Scheme:                 e.scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	}
	rep := &replica{rot: rot, metrics: reg}
	if serve {
		rep.port = testenv.FreePort(t)
		opts.WebhookServer = crwebhook.NewServer(crwebhook.Options{
			Host: "127.0.0.1", Port: rep.port, TLSOpts: []func(*tls.Config){rot.TLSOpt},
		})
	}
	mgr, err := ctrl.NewManager(e.cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if serve {
		err := webhook.SetupWithManager(t.Context(), mgr, webhook.Config{
			RunnerImage: "runner.test/sandbox-runner:v1", ReleaseNamespace: "sandbox-system",
		}, webhook.SetupOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := rot.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return rep
}

// eventually polls check until it passes, failing the test after timeout.
var eventually = testenv.Eventually

func (e *env) secretState(t *testing.T, ns, name string) (certs.State, *corev1.Secret, error) {
	t.Helper()
	var sec corev1.Secret
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &sec); err != nil {
		return certs.State{}, nil, err
	}
	st, caErr, servingErr := certs.ParseSecret(sec.Data, time.Now())
	return st, &sec, errors.Join(caErr, servingErr)
}

// bundles returns the caBundle of each webhook of the configuration.
func (e *env) bundles(t *testing.T, name string) [][]*x509.Certificate {
	t.Helper()
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := e.c.Get(t.Context(), client.ObjectKey{Name: name}, &mwc); err != nil {
		t.Fatal(err)
	}
	var out [][]*x509.Certificate
	for _, wh := range mwc.Webhooks {
		out = append(out, certs.ParseLenient(wh.ClientConfig.CABundle))
	}
	return out
}

func served(rot *certs.Rotator) *x509.Certificate {
	c, err := rot.GetCertificate(nil)
	if err != nil {
		return nil
	}
	return c.Leaf
}

func (e *env) testRace(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		ns := e.namespace(t, "race")
		cc := certs.Config{
			Namespace: ns, SecretName: "serving-cert", WebhookConfigName: ns,
			ServiceName: "sandbox-injector", SyncInterval: 200 * time.Millisecond,
		}
		a, b := e.startReplica(t, cc, false), e.startReplica(t, cc, false)

		// Without the webhook configuration a replica loads its certificate
		// but is not ready: nothing trusts the certificate yet.
		eventually(t, time.Minute, "both replicas to load a certificate", func() error {
			if served(a.rot) == nil || served(b.rot) == nil {
				return errors.New("not loaded")
			}
			return nil
		})
		if err := a.rot.ReadyChecker()(nil); err == nil {
			t.Fatal("ready without a webhook configuration")
		}
		if err := e.c.Create(t.Context(), webhookConfig(ns, ns, "https://127.0.0.1:1")); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "both replicas to be ready", func() error {
			return errors.Join(a.rot.ReadyChecker()(nil), b.rot.ReadyChecker()(nil))
		})

		var secrets corev1.SecretList
		if err := e.c.List(t.Context(), &secrets, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		if len(secrets.Items) != 1 || secrets.Items[0].Name != "serving-cert" || secrets.Items[0].Type != corev1.SecretTypeTLS {
			t.Fatalf("round %d: want one kubernetes.io/tls Secret serving-cert, got %d", round, len(secrets.Items))
		}
		st, _, err := e.secretState(t, ns, "serving-cert")
		if err != nil {
			t.Fatal(err)
		}
		for i, bundle := range e.bundles(t, ns) {
			if !certs.SameSet(bundle, st.Bundle) || len(bundle) != 1 {
				t.Errorf("round %d: webhook %d trusts %d CAs, not the Secret's one", round, i, len(bundle))
			}
		}
		if !served(a.rot).Equal(st.Serving.Cert) || !served(b.rot).Equal(st.Serving.Cert) {
			t.Errorf("round %d: a replica serves another certificate than the Secret's", round)
		}
		created := value(a.rot.Metrics().Rotations.WithLabelValues("ca")) +
			value(b.rot.Metrics().Rotations.WithLabelValues("ca"))
		if created != 1 {
			t.Errorf("round %d: the replicas created %v CAs together, want 1 (the loser adopts the winner's)", round, created)
		}
		wantSANs := []string{"sandbox-injector." + ns + ".svc", "sandbox-injector." + ns + ".svc.cluster.local"}
		if got := st.Serving.Cert.DNSNames; strings.Join(got, ",") != strings.Join(wantSANs, ",") {
			t.Errorf("DNS names %v, want %v", got, wantSANs)
		}
	}
}

func (e *env) testCorrupt(t *testing.T) {
	t.Parallel()
	ns := e.namespace(t, "corrupt")
	if err := e.c.Create(t.Context(), webhookConfig(ns, ns, "https://127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	garbage := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "serving-cert"},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			"tls.crt": []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"),
			"tls.key": []byte("garbage"), "ca.crt": []byte("garbage"),
		},
	}
	if err := e.c.Create(t.Context(), garbage); err != nil {
		t.Fatal(err)
	}
	cc := certs.Config{Namespace: ns, SecretName: "serving-cert", WebhookConfigName: ns,
		ServiceName: "sandbox-injector", SyncInterval: 200 * time.Millisecond}
	r := e.startReplica(t, cc, false)
	eventually(t, time.Minute, "the replica to be ready", func() error { return r.rot.ReadyChecker()(nil) })
	first, _, err := e.secretState(t, ns, "serving-cert")
	if err != nil {
		t.Fatalf("the corrupt Secret was not replaced: %v", err)
	}
	e.waitEvent(t, ns, certs.ReasonReplaced, "ca.crt: text that is not PEM")

	// A serving key that does not match: only the serving certificate is
	// replaced, the CA stays.
	var sec corev1.Secret
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "serving-cert"}, &sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["tls.key"] = sec.Data["ca.key"]
	if err := e.c.Update(t.Context(), &sec); err != nil {
		t.Fatal(err)
	}
	e.waitEvent(t, ns, certs.ReasonReplaced, "tls.key does not match its certificate")
	eventually(t, time.Minute, "a new serving certificate", func() error {
		st, _, err := e.secretState(t, ns, "serving-cert")
		if err != nil {
			return err
		}
		if !st.Signer.Cert.Equal(first.Signer.Cert) {
			return errors.New("the CA changed, but only the serving key was broken")
		}
		if !served(r.rot).Equal(st.Serving.Cert) {
			return errors.New("the replica does not serve the new certificate yet")
		}
		return nil
	})
}

func (e *env) waitEvent(t *testing.T, ns, reason, note string) {
	t.Helper()
	e.waitEventOfType(t, ns, corev1.EventTypeWarning, reason, note)
}

func (e *env) waitEventOfType(t *testing.T, ns, eventType, reason, note string) {
	t.Helper()
	eventually(t, time.Minute, "an Event "+reason+" saying "+note, func() error {
		var list eventsv1.EventList
		if err := e.c.List(t.Context(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		var seen []string
		for _, ev := range list.Items {
			if ev.Regarding.Kind == "Secret" && ev.Regarding.Name == "serving-cert" && ev.Reason == reason &&
				ev.Type == eventType && strings.Contains(ev.Note, note) {
				return nil
			}
			seen = append(seen, ev.Reason+": "+ev.Note)
		}
		return fmt.Errorf("events: %q", seen)
	})
}

func (e *env) testRotation(t *testing.T) {
	t.Parallel()
	ns := e.namespace(t, "rotate")
	const mwcName = "rotate-webhook"
	// Short lifetimes force every step of a rotation within a minute: the
	// serving certificate renews at 20s, a new CA is staged at 40s and serves
	// from about 43s, the first CA expires and leaves the bundle at 60s.
	cc := certs.Config{
		Namespace: ns, SecretName: "serving-cert", WebhookConfigName: mwcName,
		ServiceName: "sandbox-injector", ExtraSANs: []string{"127.0.0.1"},
		CALifetime: 60 * time.Second, ServingLifetime: 30 * time.Second,
		SyncInterval: 500 * time.Millisecond, PropagationDelay: 3 * time.Second,
	}
	// Two replicas keep the Secret; the API server calls the first. Either
	// may rotate, so the first must also pick up the other's rotations.
	front := e.startReplica(t, cc, true)
	other := e.startReplica(t, cc, false)
	if err := e.c.Create(t.Context(), webhookConfig(mwcName, ns, fmt.Sprintf("https://127.0.0.1:%d", front.port))); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the replicas to be ready", func() error {
		return errors.Join(front.rot.ReadyChecker()(nil), other.rot.ReadyChecker()(nil))
	})
	start, _, err := e.secretState(t, ns, "serving-cert")
	if err != nil {
		t.Fatal(err)
	}

	// Create an opted-in pod through the API server every 100ms until the
	// rotation is complete.
	var created, admitted atomic.Int64
	var failures atomic.Value
	loopCtx, stopLoop := context.WithCancel(t.Context())
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-loopCtx.Done():
				return
			case <-tick.C:
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("pod-%d", i),
					Annotations: map[string]string{v1alpha1.AnnotationInject: "true"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app.test/app:v1", Command: []string{"/app"}}}},
			}
			created.Add(1)
			err := e.c.Create(loopCtx, pod)
			switch {
			case loopCtx.Err() != nil:
				created.Add(-1) // cut short by the end of the test, not by the webhook
				return
			case err != nil:
				failures.Store(fmt.Sprintf("pod-%d: %v", i, err))
			case pod.Annotations[v1alpha1.AnnotationStatus] == "":
				failures.Store(fmt.Sprintf("pod-%d admitted without injection", i))
			default:
				admitted.Add(1)
			}
		}
	}()

	// Watch the Secret go through the whole rotation.
	var sawTwoCAs, sawRenewal bool
	eventually(t, 3*time.Minute, "a complete CA rotation", func() error {
		st, _, err := e.secretState(t, ns, "serving-cert")
		if err != nil {
			return err
		}
		if len(st.Bundle) == 2 {
			sawTwoCAs = true
		}
		if st.Signer.Cert.Equal(start.Signer.Cert) && !st.Serving.Cert.Equal(start.Serving.Cert) {
			sawRenewal = true
		}
		switch {
		case st.Signer.Cert.Equal(start.Signer.Cert):
			return errors.New("the first CA still signs")
		case len(st.Bundle) != 1:
			return errors.New("the old CA is still in the Secret's bundle")
		}
		for i, b := range e.bundles(t, mwcName) {
			if !certs.SameSet(b, st.Bundle) {
				return fmt.Errorf("webhook %d trusts %d CAs, the Secret %d", i, len(b), len(st.Bundle))
			}
		}
		if !served(front.rot).Equal(st.Serving.Cert) {
			return errors.New("the serving replica has not loaded the new certificate")
		}
		return nil
	})
	// A few more admissions with only the new CA trusted.
	time.Sleep(2 * time.Second)
	stopLoop()
	<-loopDone

	t.Logf("pods created %d, admitted (injected) %d", created.Load(), admitted.Load())
	if f := failures.Load(); f != nil {
		t.Errorf("last failed admission: %s", f)
	}
	if created.Load() != admitted.Load() || created.Load() < 100 {
		t.Errorf("created %d pods, admitted %d: every opted-in pod must be admitted during a rotation", created.Load(), admitted.Load())
	}
	if !sawTwoCAs {
		t.Error("never saw the old and new CA in the bundle together")
	}
	if !sawRenewal {
		t.Error("never saw a serving certificate renewed from the first CA")
	}
	rot := value(front.rot.Metrics().Rotations.WithLabelValues("ca")) + value(other.rot.Metrics().Rotations.WithLabelValues("ca"))
	if rot < 2 {
		t.Errorf("CA rotations counted by both replicas %v, want at least 2 (creation and rotation)", rot)
	}
	serving := value(front.rot.Metrics().Rotations.WithLabelValues("serving")) + value(other.rot.Metrics().Rotations.WithLabelValues("serving"))
	if serving < 3 {
		t.Errorf("serving certificates counted by both replicas %v, want at least 3 (creation, renewal, switch to the new CA)", serving)
	}
	e.waitEventOfType(t, ns, corev1.EventTypeNormal, certs.ReasonCARotated, "added a new CA")
	e.waitEventOfType(t, ns, corev1.EventTypeNormal, certs.ReasonServingRenewed, "it is due for renewal")
	e.waitEventOfType(t, ns, corev1.EventTypeNormal, certs.ReasonExpiredCAsPruned, "removed 1 expired CA")
	if got := value(front.rot.Metrics().Expiry.WithLabelValues("serving")); got != float64(served(front.rot).NotAfter.Unix()) {
		t.Errorf("serving expiry gauge %v, want %d", got, served(front.rot).NotAfter.Unix())
	}

	// The server answers TLS for 127.0.0.1 with a certificate the webhook
	// configuration trusts.
	pool := x509.NewCertPool()
	for _, c := range e.bundles(t, mwcName)[0] {
		pool.AddCert(c)
	}
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", front.port), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS to the webhook with the final caBundle: %v", err)
	}
	conn.Close()
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		return -1
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}
