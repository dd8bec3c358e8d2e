package claimkey

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestCredentialDependsOnKeyNamespaceAndNonce(t *testing.T) {
	k1, k2 := Key("0123456789abcdef0123456789abcdef"), Key("fedcba9876543210fedcba9876543210")
	base := k1.Credential("team-a", "n1")
	for name, other := range map[string]string{
		"other key":       k2.Credential("team-a", "n1"),
		"other namespace": k1.Credential("team-b", "n1"),
		"other nonce":     k1.Credential("team-a", "n2"),
		"shifted slash":   k1.Credential("team-a/n", "1"),
	} {
		if other == base {
			t.Errorf("%s: same credential %s", name, base)
		}
	}
	if again := k1.Credential("team-a", "n1"); again != base {
		t.Errorf("credential not deterministic: %s then %s", base, again)
	}
}

func TestVerifierIsDigestOfCredential(t *testing.T) {
	k := Key("0123456789abcdef0123456789abcdef")
	cred := k.Credential("ns", "nonce")
	sum := sha256.Sum256([]byte(cred))
	want := "sha256:" + hex.EncodeToString(sum[:])
	if got := k.Verifier("ns", "nonce"); got != want {
		t.Fatalf("verifier %s, want %s", got, want)
	}
	if strings.Contains(k.Verifier("ns", "nonce"), cred) {
		t.Fatal("verifier contains the credential")
	}
}

func TestNewNonceIsRandom(t *testing.T) {
	a, err := NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewNonce()
	if a == b || len(a) != 2*NonceBytes {
		t.Fatalf("nonces %q and %q", a, b)
	}
}

// TestRingCredential: the ring finds a pod's credential under whichever
// key its verifier was made with, and none for a verifier of another key,
// another nonce or another namespace.
func TestRingCredential(t *testing.T) {
	oldKey, newKey, other := Key("old-key-0123456789abcdef"), Key("new-key-0123456789abcdef"), Key("other-key-0123456789abcdef")
	ring := NewRing(Keys{Current: newKey, Previous: oldKey})
	for name, tc := range map[string]struct {
		verifier string
		want     string
	}{
		"current key":     {newKey.Verifier("ns", "n1"), newKey.Credential("ns", "n1")},
		"previous key":    {oldKey.Verifier("ns", "n1"), oldKey.Credential("ns", "n1")},
		"unknown key":     {other.Verifier("ns", "n1"), ""},
		"other nonce":     {newKey.Verifier("ns", "n2"), ""},
		"other namespace": {newKey.Verifier("ns2", "n1"), ""},
		"no verifier":     {"", ""},
	} {
		got, ok := ring.Credential("ns", "n1", tc.verifier)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: credential %q, %v; want %q", name, got, ok, tc.want)
		}
	}
	if got := ring.Verifier("ns", "n1"); got != newKey.Verifier("ns", "n1") {
		t.Errorf("the ring injects under %s, want the current key", got)
	}
}

// TestRingSet: Set reports a change only when the keys differ, and tells
// every subscriber once however many changes came meanwhile.
func TestRingSet(t *testing.T) {
	a, b := Key("key-a-0123456789abcdef"), Key("key-b-0123456789abcdef")
	ring := NewRing(Keys{Current: a})
	s1, s2 := ring.Subscribe(), ring.Subscribe()
	if ring.Set(Keys{Current: Key(string(a))}) {
		t.Fatal("Set of the same key reported a change")
	}
	if !ring.Set(Keys{Current: b, Previous: a}) || !ring.Set(Keys{Current: b}) {
		t.Fatal("Set of other keys reported no change")
	}
	for i, s := range []<-chan struct{}{s1, s2} {
		select {
		case <-s:
		default:
			t.Fatalf("subscriber %d not told", i)
		}
		select {
		case <-s:
			t.Fatalf("subscriber %d told twice for changes it had not seen yet", i)
		default:
		}
	}
	if a.ID() == b.ID() || len(a.ID()) != 12 || strings.Contains(string(a), a.ID()) {
		t.Fatalf("key IDs %q and %q", a.ID(), b.ID())
	}
}
