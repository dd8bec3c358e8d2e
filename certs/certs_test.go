package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"sandbox.io/injector/certs"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mustCA(t *testing.T, lifetime time.Duration, now time.Time) *certs.KeyPair {
	t.Helper()
	ca, err := certs.NewCA("test-ca", lifetime, now)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustServing(t *testing.T, ca *certs.KeyPair, lifetime time.Duration, now time.Time, sans ...string) *certs.KeyPair {
	t.Helper()
	if len(sans) == 0 {
		sans = []string{"svc.ns.svc", "127.0.0.1"}
	}
	s, err := certs.NewServing(ca, sans, lifetime, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGeneratedCertificatesServeTLS(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ca := mustCA(t, time.Hour, now)
	srv := mustServing(t, ca, 10*time.Minute, now, "webhook.system.svc", "webhook.system.svc.cluster.local", "127.0.0.1", "::1")

	if !ca.Cert.IsCA || !ca.Cert.NotAfter.Equal(now.Add(time.Hour).Truncate(time.Second)) {
		t.Errorf("CA: IsCA %v, NotAfter %s", ca.Cert.IsCA, ca.Cert.NotAfter)
	}
	if got, want := srv.Cert.NotBefore, now.Add(-certs.ClockSkew).Truncate(time.Second); !got.Equal(want) {
		t.Errorf("serving NotBefore %s, want %s (clock skew allowance)", got, want)
	}
	if diff := cmp.Diff([]string{"webhook.system.svc", "webhook.system.svc.cluster.local"}, srv.Cert.DNSNames); diff != "" {
		t.Errorf("DNS names (-want +got):\n%s", diff)
	}
	if len(srv.Cert.IPAddresses) != 2 || !srv.Cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IP SANs %v", srv.Cert.IPAddresses)
	}

	// A real TLS handshake on loopback, the client trusting only the CA.
	pair, err := tls.X509KeyPair(srv.CertPEM, srv.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, name := range []string{"webhook.system.svc", "webhook.system.svc.cluster.local", "127.0.0.1", "::1"} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Fatalf("handshake for %s with a client that trusts the CA: %v", name, err)
		}
		conn.Close()
	}
	if conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "other.system.svc"}); err == nil {
		conn.Close()
		t.Error("handshake for a name that is not in the certificate succeeded")
	}
}

func TestServingNeverOutlivesItsCA(t *testing.T) {
	t.Parallel()
	ca := mustCA(t, time.Hour, t0)
	later := t0.Add(50 * time.Minute)
	srv := mustServing(t, ca, time.Hour, later)
	if !srv.Cert.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("serving NotAfter %s, want the CA's %s", srv.Cert.NotAfter, ca.Cert.NotAfter)
	}
	if _, err := certs.NewServing(ca, nil, time.Hour, t0); err == nil {
		t.Error("a serving certificate without names was issued")
	}
}

func TestRenewAt(t *testing.T) {
	t.Parallel()
	ca := mustCA(t, 90*time.Minute, t0)
	tests := []struct {
		name        string
		lifetime    time.Duration
		renewBefore time.Duration
		want        time.Time
	}{
		{"a third of the lifetime by default", 90 * time.Minute, 0, t0.Add(60 * time.Minute)},
		{"explicit window", 90 * time.Minute, 10 * time.Minute, t0.Add(80 * time.Minute)},
		{"ten years", 10 * 365 * 24 * time.Hour, 0, t0.Add(90*time.Minute - 10*365*24*time.Hour/3)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := certs.RenewAt(ca.Cert, tc.lifetime, tc.renewBefore); !got.Equal(tc.want) {
				t.Errorf("RenewAt = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseBundle(t *testing.T) {
	t.Parallel()
	a, b := mustCA(t, time.Hour, t0), mustCA(t, time.Hour, t0)
	key := a.KeyPEM
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr string
	}{
		{"one", string(a.CertPEM), 1, ""},
		{"two with blank lines", string(a.CertPEM) + "\n\n" + string(b.CertPEM) + "\n", 2, ""},
		{"empty", "", 0, "no PEM certificate"},
		{"only spaces", " \n\t", 0, "no PEM certificate"},
		{"text before", "hello\n" + string(a.CertPEM), 0, "not PEM"},
		{"text between", string(a.CertPEM) + "junk" + string(b.CertPEM), 0, "not PEM after certificate 1"},
		{"text after", string(a.CertPEM) + "junk", 0, "not PEM after certificate 1"},
		{"a key", string(key), 0, `"PRIVATE KEY", not CERTIFICATE`},
		{"truncated", string(a.CertPEM[:len(a.CertPEM)-30]), 0, "malformed PEM"},
		{"bad DER", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 0, "parsing certificate 1"},
		{"too many", strings.Repeat(string(a.CertPEM), certs.MaxBundle+1), 0, "more than 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := certs.ParseBundle([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("got %d certificates, err %v; want %d", len(got), err, tc.want)
			}
			if string(certs.EncodeBundle(got)) != strings.ReplaceAll(strings.TrimSpace(tc.in), "\n\n\n", "\n")+"\n" {
				t.Error("EncodeBundle does not give back the input")
			}
		})
	}
}

func TestParseLenientSkipsWhatDoesNotParse(t *testing.T) {
	t.Parallel()
	a, b := mustCA(t, time.Hour, t0), mustCA(t, time.Hour, t0)
	in := "junk\n" + string(a.CertPEM) + string(a.KeyPEM) + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" + string(b.CertPEM)
	got := certs.ParseLenient([]byte(in))
	if len(got) != 2 || !got[0].Equal(a.Cert) || !got[1].Equal(b.Cert) {
		t.Fatalf("got %d certificates, want a and b", len(got))
	}
}

func TestMergeBundle(t *testing.T) {
	t.Parallel()
	oldCA := mustCA(t, time.Hour, t0)
	newCA := mustCA(t, time.Hour, t0.Add(40*time.Minute))
	other := mustCA(t, 2*time.Hour, t0)
	names := func(cs []*certs.KeyPair) []*x509.Certificate {
		var out []*x509.Certificate
		for _, c := range cs {
			out = append(out, c.Cert)
		}
		return out
	}
	tests := []struct {
		name    string
		now     time.Time
		bundles [][]*x509.Certificate
		want    []*x509.Certificate
	}{
		{"new CA first, old kept while valid", t0.Add(45 * time.Minute),
			[][]*x509.Certificate{names([]*certs.KeyPair{newCA}), names([]*certs.KeyPair{oldCA})},
			names([]*certs.KeyPair{newCA, oldCA})},
		{"union without duplicates, first order wins", t0.Add(45 * time.Minute),
			[][]*x509.Certificate{names([]*certs.KeyPair{newCA, oldCA}), names([]*certs.KeyPair{other, oldCA, newCA})},
			names([]*certs.KeyPair{newCA, oldCA, other})},
		{"expired old CA dropped", t0.Add(61 * time.Minute),
			[][]*x509.Certificate{names([]*certs.KeyPair{newCA, oldCA})},
			names([]*certs.KeyPair{newCA})},
		{"valid up to its last second", oldCA.Cert.NotAfter,
			[][]*x509.Certificate{names([]*certs.KeyPair{oldCA})},
			names([]*certs.KeyPair{oldCA})},
		{"nothing", t0, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := certs.MergeBundle(tc.now, tc.bundles...)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d certificates, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !got[i].Equal(tc.want[i]) {
					t.Errorf("certificate %d differs", i)
				}
			}
			if !certs.SameSet(got, tc.want) {
				t.Error("SameSet is false for equal bundles")
			}
		})
	}
	if certs.SameSet(names([]*certs.KeyPair{oldCA}), names([]*certs.KeyPair{oldCA, newCA})) {
		t.Error("SameSet is true for different bundles")
	}
}

func TestVerifiesWithOldAndNewCA(t *testing.T) {
	t.Parallel()
	oldCA := mustCA(t, time.Hour, t0)
	newCA := mustCA(t, time.Hour, t0.Add(40*time.Minute))
	now := t0.Add(45 * time.Minute)
	oldServing := mustServing(t, oldCA, 30*time.Minute, t0.Add(30*time.Minute))
	newServing := mustServing(t, newCA, 30*time.Minute, now)
	both := []*x509.Certificate{newCA.Cert, oldCA.Cert}
	if !certs.Verifies(both, oldServing.Cert, now) || !certs.Verifies(both, newServing.Cert, now) {
		t.Error("a bundle with both CAs must verify both serving certificates during a rotation")
	}
	if certs.Verifies([]*x509.Certificate{oldCA.Cert}, newServing.Cert, now) {
		t.Error("the old CA alone verifies the new serving certificate")
	}
	if certs.Verifies(both, oldServing.Cert, t0.Add(61*time.Minute)) {
		t.Error("an expired serving certificate verifies")
	}
}

func TestParseKeyAndKeyMatches(t *testing.T) {
	t.Parallel()
	a, b := mustCA(t, time.Hour, t0), mustCA(t, time.Hour, t0)
	key, err := certs.ParseKey(a.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !certs.KeyMatches(a.Cert, key) || certs.KeyMatches(b.Cert, key) {
		t.Error("KeyMatches does not tell a's key from b's")
	}
	for _, bad := range []string{"", string(a.CertPEM), string(a.KeyPEM) + "x", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		if _, err := certs.ParseKey([]byte(bad)); err == nil {
			t.Errorf("ParseKey(%.30q) succeeded", bad)
		}
	}
}

// secretData returns valid Secret data: bundle (signer first), signer's key
// and a serving certificate.
func secretData(bundle []*certs.KeyPair, serving *certs.KeyPair) map[string][]byte {
	var cas []*x509.Certificate
	for _, c := range bundle {
		cas = append(cas, c.Cert)
	}
	return map[string][]byte{
		certs.KeyCABundle:       certs.EncodeBundle(cas),
		certs.KeyCAKey:          bundle[0].KeyPEM,
		corev1.TLSCertKey:       serving.CertPEM,
		corev1.TLSPrivateKeyKey: serving.KeyPEM,
	}
}

func TestParseSecretFindsCorruption(t *testing.T) {
	t.Parallel()
	ca, other := mustCA(t, time.Hour, t0), mustCA(t, time.Hour, t0)
	srv := mustServing(t, ca, 30*time.Minute, t0)
	now := t0.Add(time.Minute)
	with := func(k, v string) map[string][]byte {
		d := secretData([]*certs.KeyPair{ca}, srv)
		if v == "" {
			delete(d, k)
		} else {
			d[k] = []byte(v)
		}
		return d
	}
	tests := []struct {
		name                string
		data                map[string][]byte
		now                 time.Time
		wantCA, wantServing string
	}{
		{name: "valid", data: secretData([]*certs.KeyPair{ca}, srv), now: now},
		{name: "empty", data: map[string][]byte{}, now: now, wantCA: "ca.crt: no PEM certificate"},
		{name: "garbage bundle", data: with(certs.KeyCABundle, "garbage"), now: now, wantCA: "ca.crt: text that is not PEM"},
		{name: "CA key missing", data: with(certs.KeyCAKey, ""), now: now, wantCA: "ca.key: no PEM private key"},
		{name: "CA key of another CA", data: with(certs.KeyCAKey, string(other.KeyPEM)), now: now, wantCA: "ca.key does not match"},
		{name: "first of bundle not a CA", data: func() map[string][]byte {
			d := with(certs.KeyCABundle, string(srv.CertPEM))
			d[certs.KeyCAKey] = srv.KeyPEM
			return d
		}(), now: now, wantCA: "not a CA"},
		{name: "CA expired", data: secretData([]*certs.KeyPair{ca}, srv), now: t0.Add(2 * time.Hour), wantCA: "the CA expired at 2026-01-01T01:00:00Z"},
		{name: "serving key mismatched", data: with(corev1.TLSPrivateKeyKey, string(other.KeyPEM)), now: now, wantServing: "tls.key does not match"},
		{name: "serving unparseable", data: with(corev1.TLSCertKey, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), now: now, wantServing: "tls.crt: parsing certificate 1"},
		{name: "serving expired", data: secretData([]*certs.KeyPair{ca}, srv), now: t0.Add(31 * time.Minute), wantServing: "the serving certificate expired"},
		{name: "serving from a CA not in the bundle", data: secretData([]*certs.KeyPair{other}, srv), now: now, wantServing: "does not chain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, caErr, servingErr := certs.ParseSecret(tc.data, tc.now)
			check := func(what string, err error, want string) {
				if want == "" && err != nil {
					t.Errorf("%s: unexpected error %v", what, err)
				}
				if want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
					t.Errorf("%s: err = %v, want %q", what, err, want)
				}
			}
			check("CA", caErr, tc.wantCA)
			check("serving", servingErr, tc.wantServing)
		})
	}
}
