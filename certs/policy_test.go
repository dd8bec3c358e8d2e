package certs_test

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"sandbox.io/injector/certs"
)

// The lifetimes of these tests: CA 90 minutes, serving 45 minutes, renewed
// when a third remains (CA at 60, serving at 30 minutes of age).
var policy = certs.Policy{
	CAName: "test-ca", SANs: []string{"svc.ns.svc", "127.0.0.1"},
	CALifetime: 90 * time.Minute, ServingLifetime: 45 * time.Minute,
}

func never(*x509.Certificate) bool  { return false }
func always(*x509.Certificate) bool { return true }

func TestPolicyNext(t *testing.T) {
	t.Parallel()
	ca := mustCA(t, policy.CALifetime, t0)
	srv := mustServing(t, ca, policy.ServingLifetime, t0, policy.SANs...)
	stagedCA := mustCA(t, policy.CALifetime, t0.Add(61*time.Minute))
	oldSrv := mustServing(t, ca, policy.ServingLifetime, t0.Add(31*time.Minute), policy.SANs...) // expires at 76 minutes
	staged := secretData([]*certs.KeyPair{stagedCA, ca}, oldSrv)
	newSrv := mustServing(t, stagedCA, policy.ServingLifetime, t0.Add(62*time.Minute), policy.SANs...)
	afterSwitch := secretData([]*certs.KeyPair{stagedCA, ca}, newSrv)

	type want struct {
		unchanged bool
		reasons   string // comma-separated Change reasons
		warning   bool
		bundle    int    // CAs in the new bundle
		signer    string // "same", "new" or "staged"
		serving   string // "same", "new"
		waiting   bool
	}
	tests := []struct {
		name    string
		data    map[string][]byte
		now     time.Time
		trusted func(*x509.Certificate) bool
		want    want
	}{
		{"no secret: create everything", nil, t0, never,
			want{reasons: certs.ReasonCreated, bundle: 1, signer: "new", serving: "new"}},
		{"fresh secret stays", secretData([]*certs.KeyPair{ca}, srv), t0.Add(29 * time.Minute), never,
			want{unchanged: true}},
		{"serving due: renewed from the same CA without waiting", secretData([]*certs.KeyPair{ca}, srv), t0.Add(31 * time.Minute), never,
			want{reasons: certs.ReasonServingRenewed, bundle: 1, signer: "same", serving: "new"}},
		{"a name missing: renewed", secretData([]*certs.KeyPair{ca}, mustServing(t, ca, policy.ServingLifetime, t0, "old.ns.svc")), t0.Add(time.Minute), never,
			want{reasons: certs.ReasonServingRenewed, bundle: 1, signer: "same", serving: "new"}},
		{"CA due: new CA staged first, serving kept", secretData([]*certs.KeyPair{ca}, oldSrv), t0.Add(61 * time.Minute), never,
			want{reasons: certs.ReasonCARotated, bundle: 2, signer: "new", serving: "same", waiting: true}},
		{"staged CA not yet trusted: wait", staged, t0.Add(62 * time.Minute), never,
			want{unchanged: true, waiting: true}},
		{"staged CA trusted: serving switches, old CA stays", staged, t0.Add(62 * time.Minute), always,
			want{reasons: certs.ReasonServingRenewed, bundle: 2, signer: "staged", serving: "new"}},
		{"after the switch nothing changes while the old CA is valid", afterSwitch, t0.Add(89 * time.Minute), always,
			want{unchanged: true}},
		{"old CA expired: pruned", afterSwitch, t0.Add(91 * time.Minute), always,
			want{reasons: certs.ReasonExpiredCAsPruned, bundle: 1, signer: "staged", serving: "same"}},
		{"serving broken while CA staged: replaced at once", func() map[string][]byte {
			d := secretData([]*certs.KeyPair{stagedCA, ca}, oldSrv)
			d["tls.key"] = stagedCA.KeyPEM
			return d
		}(), t0.Add(62 * time.Minute), never,
			want{reasons: certs.ReasonReplaced, warning: true, bundle: 2, signer: "staged", serving: "new"}},
		{"corrupt CA: replaced, old CA kept in the bundle", func() map[string][]byte {
			d := secretData([]*certs.KeyPair{ca}, srv)
			d["ca.key"] = []byte("garbage")
			return d
		}(), t0.Add(time.Minute), never,
			want{reasons: certs.ReasonReplaced, warning: true, bundle: 2, signer: "new", serving: "new"}},
		{"expired everything: replaced", secretData([]*certs.KeyPair{ca}, srv), t0.Add(3 * time.Hour), never,
			want{reasons: certs.ReasonReplaced, warning: true, bundle: 1, signer: "new", serving: "new"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			next, changes, waiting, err := policy.Next(tc.data, tc.now, tc.trusted)
			if err != nil {
				t.Fatal(err)
			}
			if (waiting != "") != tc.want.waiting {
				t.Errorf("waiting = %q, want waiting %v", waiting, tc.want.waiting)
			}
			if tc.want.unchanged {
				if next != nil {
					t.Fatalf("Secret changed: %+v", changes)
				}
				return
			}
			if next == nil {
				t.Fatal("Secret unchanged")
			}
			var reasons []string
			for _, c := range changes {
				reasons = append(reasons, c.Reason)
				if c.Warning != tc.want.warning {
					t.Errorf("change %s: warning %v", c.Reason, c.Warning)
				}
				if c.Warning && !strings.Contains(c.Note, "replaced") {
					t.Errorf("warning note %q does not say what was replaced", c.Note)
				}
			}
			if got := strings.Join(reasons, ","); got != tc.want.reasons {
				t.Errorf("reasons %q, want %q", got, tc.want.reasons)
			}
			if len(next.Bundle) != tc.want.bundle {
				t.Errorf("bundle has %d CAs, want %d", len(next.Bundle), tc.want.bundle)
			}
			if !next.Bundle[0].Equal(next.Signer.Cert) {
				t.Error("the signer is not first in the bundle")
			}
			// The written state must parse cleanly and verify.
			st, caErr, servingErr := certs.ParseSecret(next.Data(), tc.now)
			if caErr != nil || servingErr != nil {
				t.Fatalf("next state does not parse: %v, %v", caErr, servingErr)
			}
			var oldSigner, oldServing *x509.Certificate
			if tc.data != nil {
				if b, err := certs.ParseBundle(tc.data["ca.crt"]); err == nil {
					oldSigner = b[0]
				}
				if b, err := certs.ParseBundle(tc.data["tls.crt"]); err == nil {
					oldServing = b[0]
				}
			}
			switch tc.want.signer {
			case "same":
				if !st.Signer.Cert.Equal(oldSigner) {
					t.Error("signer changed")
				}
			case "staged":
				if !st.Signer.Cert.Equal(stagedCA.Cert) {
					t.Error("signer is not the staged CA")
				}
			case "new":
				if oldSigner != nil && st.Signer.Cert.Equal(oldSigner) || st.Signer.Cert.Equal(stagedCA.Cert) {
					t.Error("signer is not new")
				}
			}
			if sameServing := oldServing != nil && st.Serving.Cert.Equal(oldServing); sameServing != (tc.want.serving == "same") {
				t.Errorf("serving certificate kept = %v, want %s", sameServing, tc.want.serving)
			}
			if tc.want.serving == "new" && st.Serving.Cert.CheckSignatureFrom(st.Signer.Cert) != nil {
				t.Error("new serving certificate is not signed by the signer")
			}
		})
	}
}

func TestPolicyNames(t *testing.T) {
	t.Parallel()
	ca := mustCA(t, policy.CALifetime, t0)
	now := t0.Add(time.Minute)
	t.Run("a certificate with more names is kept", func(t *testing.T) {
		t.Parallel()
		srv := mustServing(t, ca, policy.ServingLifetime, t0, append([]string{"extra.ns.svc"}, policy.SANs...)...)
		if next, changes, _, err := policy.Next(secretData([]*certs.KeyPair{ca}, srv), now, never); err != nil || next != nil {
			t.Fatalf("Secret changed (%v, %+v)", err, changes)
		}
	})
	t.Run("a missing name is added, other names stay until renewal", func(t *testing.T) {
		t.Parallel()
		srv := mustServing(t, ca, policy.ServingLifetime, t0, "old.ns.svc")
		next, _, _, err := policy.Next(secretData([]*certs.KeyPair{ca}, srv), now, never)
		if err != nil || next == nil {
			t.Fatalf("Secret unchanged (%v)", err)
		}
		got := strings.Join(append(next.Serving.Cert.DNSNames, next.Serving.Cert.IPAddresses[0].String()), ",")
		if want := "svc.ns.svc,old.ns.svc,127.0.0.1"; got != want {
			t.Errorf("names %s, want %s", got, want)
		}
		renewed, _, _, err := policy.Next(next.Data(), t0.Add(31*time.Minute), never)
		if err != nil || renewed == nil {
			t.Fatalf("not renewed when due (%v)", err)
		}
		if got := strings.Join(renewed.Serving.Cert.DNSNames, ","); got != "svc.ns.svc" {
			t.Errorf("names after renewal %s, want only the configured ones", got)
		}
	})
}

// TestPolicyRetiresPreviousCA replays a rotation meant to drop a CA that
// may have leaked: with an overlap, the previous CA leaves the bundle once
// the new CA's serving certificate has been issued for the overlap, not
// when it expires years later; and never while the served certificate
// still chains to it.
func TestPolicyRetiresPreviousCA(t *testing.T) {
	t.Parallel()
	p := policy
	p.CAOverlap = 10 * time.Minute
	ca := mustCA(t, p.CALifetime, t0)
	oldSrv := mustServing(t, ca, p.ServingLifetime, t0.Add(31*time.Minute), p.SANs...)
	stagedCA := mustCA(t, p.CALifetime, t0.Add(61*time.Minute))
	newSrv := mustServing(t, stagedCA, p.ServingLifetime, t0.Add(62*time.Minute), p.SANs...)
	staged := secretData([]*certs.KeyPair{stagedCA, ca}, oldSrv)
	afterSwitch := secretData([]*certs.KeyPair{stagedCA, ca}, newSrv)

	if next, _, _, err := p.Next(afterSwitch, t0.Add(71*time.Minute), always); err != nil || next != nil {
		t.Fatalf("within the overlap: next %v, err %v; want the old CA kept", next, err)
	}
	next, changes, _, err := p.Next(afterSwitch, t0.Add(72*time.Minute), always)
	if err != nil || next == nil {
		t.Fatalf("after the overlap: next %v, err %v; want the old CA retired", next, err)
	}
	if len(changes) != 1 || changes[0].Reason != certs.ReasonPreviousCAsRetired || len(next.Bundle) != 1 || !next.Bundle[0].Equal(stagedCA.Cert) {
		t.Fatalf("after the overlap: changes %+v, bundle of %d; want only the new CA, retired with an event", changes, len(next.Bundle))
	}
	if _, caErr, servingErr := certs.ParseSecret(next.Data(), t0.Add(72*time.Minute)); caErr != nil || servingErr != nil {
		t.Fatalf("retired state does not parse: %v, %v", caErr, servingErr)
	}
	// Served certificate still from the old CA (the new one not trusted
	// yet): the old CA stays, however long it takes.
	if next, _, _, err := p.Next(staged, t0.Add(70*time.Minute), never); err != nil || next != nil {
		t.Fatalf("old CA still signing the served certificate: next %v, err %v; want it kept", next, err)
	}

	st, _, _ := certs.ParseSecret(afterSwitch, t0.Add(62*time.Minute))
	newer := mustCA(t, p.CALifetime, t0.Add(63*time.Minute))
	for _, tc := range []struct {
		name string
		c    *x509.Certificate
		now  time.Time
		want bool
	}{
		{"older CA within the overlap", ca.Cert, t0.Add(71 * time.Minute), true},
		{"older CA after the overlap", ca.Cert, t0.Add(72 * time.Minute), false},
		{"newer CA (another replica rotated since)", newer.Cert, t0.Add(80 * time.Minute), true},
	} {
		if got := p.KeepsOther(&st, tc.c, tc.now); got != tc.want {
			t.Errorf("%s: KeepsOther %v, want %v", tc.name, got, tc.want)
		}
	}
}
