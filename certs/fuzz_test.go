package certs_test

import (
	"testing"
	"time"

	"sandbox.io/injector/certs"
)

// FuzzParseBundle hunts panics and inconsistencies in the PEM parsing of
// trust bundles, keys and whole Secrets, which read whatever is in the
// cluster. Run it with:
//
//	go test ./certs -run '^$' -fuzz '^FuzzParseBundle$' -fuzztime 30s
//
// Inputs that once failed are kept in testdata/fuzz/FuzzParseBundle.
func FuzzParseBundle(f *testing.F) {
	ca, err := certs.NewCA("fuzz-ca", time.Hour, t0)
	if err != nil {
		f.Fatal(err)
	}
	srv, err := certs.NewServing(ca, []string{"svc.ns.svc"}, time.Hour, t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ca.CertPEM, ca.KeyPEM)
	f.Add(append(append([]byte{}, ca.CertPEM...), srv.CertPEM...), srv.KeyPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte("junk-----BEGIN "), []byte{})
	f.Fuzz(func(t *testing.T, bundle, key []byte) {
		got, err := certs.ParseBundle(bundle)
		if err == nil {
			if len(got) == 0 || len(got) > certs.MaxBundle {
				t.Fatalf("ParseBundle returned %d certificates without error", len(got))
			}
			// What parses strictly re-encodes to something that parses the same.
			again, err := certs.ParseBundle(certs.EncodeBundle(got))
			if err != nil || len(again) != len(got) || !certs.SameSet(got, again) {
				t.Fatalf("re-encoded bundle does not parse the same: %v", err)
			}
			// The lenient parser finds at least everything the strict one does.
			if lenient := certs.ParseLenient(bundle); len(lenient) < len(got) {
				t.Fatalf("ParseLenient found %d certificates, ParseBundle %d", len(lenient), len(got))
			}
		}
		if k, err := certs.ParseKey(key); err == nil && k == nil {
			t.Fatal("ParseKey returned a nil key without error")
		}
		data := map[string][]byte{"ca.crt": bundle, "ca.key": key, "tls.crt": bundle, "tls.key": key}
		st, caErr, servingErr := certs.ParseSecret(data, t0)
		if caErr == nil && (st.Signer == nil || len(st.Bundle) == 0) {
			t.Fatal("ParseSecret accepted a Secret without a signer")
		}
		if caErr == nil && servingErr == nil && st.Serving == nil {
			t.Fatal("ParseSecret accepted a Secret without a serving certificate")
		}
	})
}
