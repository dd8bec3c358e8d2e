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
