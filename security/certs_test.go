package security

import (
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sandbox.io/injector/certs"
	"sandbox.io/injector/internal/testenv"
)

// TestCertsAttacks replays, against a real kube-apiserver, the holder of a
// leaked webhook CA waiting for a rotation that never removes it: the
// caBundle used to keep every CA it ever trusted until it expired (10
// years). The rotator runs on a fake clock, one pass at a time.
func TestCertsAttacks(t *testing.T) {
	cfg := testenv.Start(t, &envtest.Environment{})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const ns, secret, mwcName = "certs-attack", "serving-cert", "certs-attack"
	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	url := "https://127.0.0.1:1/mutate"
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: mwcName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "pod.sandbox.io", AdmissionReviewVersions: []string{"v1"},
			SideEffects:  ptr.To(admissionregistrationv1.SideEffectClassNone),
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			// Matches nothing: only its caBundle matters here.
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"security.sandbox.io/never": "true"}},
		}},
	}
	if err := c.Create(t.Context(), mwc); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	const overlap = time.Hour
	rot, err := certs.New(certs.Config{
		Namespace: ns, SecretName: secret, WebhookConfigName: mwcName, ServiceName: "sandbox-injector",
		CALifetime: 90 * 24 * time.Hour, ServingLifetime: 90 * 24 * time.Hour,
		PropagationDelay: 10 * time.Second, SyncInterval: time.Second, CAOverlap: overlap,
	}, certs.Options{Reader: c, Writer: c, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	sync := func(advance time.Duration) {
		t.Helper()
		now = now.Add(advance)
		if err := rot.Sync(t.Context()); err != nil {
			t.Fatalf("sync at %s: %v", now, err)
		}
	}
	trusted := func() []*x509.Certificate {
		t.Helper()
		var got admissionregistrationv1.MutatingWebhookConfiguration
		if err := c.Get(t.Context(), client.ObjectKey{Name: mwcName}, &got); err != nil {
			t.Fatal(err)
		}
		return certs.ParseLenient(got.Webhooks[0].ClientConfig.CABundle)
	}
	signer := func() *x509.Certificate {
		t.Helper()
		var s corev1.Secret
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: secret}, &s); err != nil {
			t.Fatal(err)
		}
		st, caErr, _ := certs.ParseSecret(s.Data, now)
		if caErr != nil {
			t.Fatal(caErr)
		}
		return st.Signer.Cert
	}
	sync(0)
	leaked := signer()

	attack(t, "certs", "a leaked CA stays trusted after the CA rotation", func(t *testing.T) error {
		sync(61 * 24 * time.Hour) // the CA is due: a new one is staged
		sync(11 * time.Second)    // trusted for the propagation delay: its serving certificate is issued
		if signer().Equal(leaked) {
			t.Fatal("the CA did not rotate")
		}
		sync(overlap - time.Minute)
		if !certs.Contains(trusted(), leaked) {
			t.Fatal("the previous CA left before the overlap: replicas may still serve its certificate")
		}
		sync(2 * time.Minute)
		if certs.Contains(trusted(), leaked) {
			return errors.New("the caBundle still trusts the previous CA after the overlap")
		}
		if got := trusted(); len(got) != 1 || !got[0].Equal(signer()) {
			return fmt.Errorf("the caBundle holds %d CAs, want only the signing one", len(got))
		}
		return nil
	})

	attack(t, "certs", "a leaked CA stays trusted after the Secret is deleted to replace it", func(t *testing.T) error {
		leaked := signer()
		if err := c.Delete(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secret}}); err != nil {
			t.Fatal(err)
		}
		sync(time.Second)
		if signer().Equal(leaked) {
			t.Fatal("no new CA after the Secret was deleted")
		}
		if !certs.Contains(trusted(), leaked) {
			t.Fatal("the previous CA left at once: replicas still serving its certificate would fail")
		}
		sync(overlap + time.Minute)
		if certs.Contains(trusted(), leaked) {
			return errors.New("the caBundle still trusts the replaced CA after the overlap")
		}
		return nil
	})
}
