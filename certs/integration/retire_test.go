package integration_test

import (
	"crypto/x509"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"

	"sandbox.io/injector/certs"
)

// testRetire runs a whole CA rotation on a fake clock, one pass at a time,
// against the real API server: the previous CA stays trusted through the
// switch to the new CA and for the overlap after it, then leaves both the
// Secret's bundle and every webhook's caBundle (a CA that leaked is no
// longer trusted).
func (e *env) testRetire(t *testing.T) {
	t.Parallel()
	ns := e.namespace(t, "retire")
	if err := e.c.Create(t.Context(), webhookConfig(ns, ns, "https://127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	const overlap = time.Hour
	rot, err := certs.New(certs.Config{
		Namespace: ns, SecretName: "serving-cert", WebhookConfigName: ns, ServiceName: "sandbox-injector",
		CALifetime: 90 * 24 * time.Hour, ServingLifetime: 90 * 24 * time.Hour,
		PropagationDelay: 10 * time.Second, SyncInterval: time.Second, CAOverlap: overlap,
	}, certs.Options{Reader: e.c, Writer: e.c, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	sync := func(advance time.Duration) (secretCAs int, trusted [][]*x509.Certificate) {
		t.Helper()
		now = now.Add(advance)
		if err := rot.Sync(t.Context()); err != nil {
			t.Fatalf("sync at %s: %v", now, err)
		}
		st, _, err := e.secretState(t, ns, "serving-cert")
		if err != nil && st.Signer == nil {
			t.Fatal(err)
		}
		return len(st.Bundle), e.bundles(t, ns)
	}
	fingerprints := func(b []*x509.Certificate) sets.Set[certs.Fingerprint] {
		s := sets.New[certs.Fingerprint]()
		for _, c := range b {
			s.Insert(certs.FingerprintOf(c))
		}
		return s
	}
	_, first := sync(0)
	old := first[0][0]
	steps := []struct {
		name      string
		advance   time.Duration
		secretCAs int
		oldKept   bool
	}{
		{"created", 0, 1, true},
		{"CA due: the new CA is staged beside the old", 61 * 24 * time.Hour, 2, true},
		{"new CA trusted: its serving certificate is issued, the old CA stays", 11 * time.Second, 2, true},
		{"within the overlap: the old CA stays", overlap - time.Minute, 2, true},
		{"after the overlap: the old CA is retired", 2 * time.Minute, 1, false},
		{"and stays retired", 24 * time.Hour, 1, false},
	}
	for _, s := range steps {
		n, trusted := sync(s.advance)
		if n != s.secretCAs {
			t.Errorf("%s: the Secret's bundle holds %d CAs, want %d", s.name, n, s.secretCAs)
		}
		for i, b := range trusted {
			if certs.Contains(b, old) != s.oldKept {
				t.Errorf("%s: webhook %d trusts the old CA: %v, want %v", s.name, i, !s.oldKept, s.oldKept)
			}
			if !fingerprints(b).Equal(fingerprints(trusted[0])) {
				t.Errorf("%s: the webhooks trust different CAs", s.name)
			}
		}
	}
}
