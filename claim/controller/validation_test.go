package controller_test

import (
	"strings"
	"testing"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/claimtest"
)

// TestClaimSpecValidation: the API server refuses a malformed claim with a
// message naming the field, by the CRD's own schema and rules: a lifetime
// the controller cannot count (it would wrap around and end the sandbox at
// once), auth naming both or neither token, and a change to what is
// immutable.
func TestClaimSpecValidation(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{NoController: true})
	ns := e.Namespace()
	digest := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name   string
		mutate func(*v1alpha1.SandboxClaim)
		want   string // "" admits
	}{
		{"the longest lifetime", func(c *v1alpha1.SandboxClaim) { c.Spec.ActiveDeadlineSeconds = ptr.To[int64](9223372036) }, ""},
		{"a lifetime past 292 years", func(c *v1alpha1.SandboxClaim) { c.Spec.ActiveDeadlineSeconds = ptr.To[int64](9223372037) }, "spec.activeDeadlineSeconds"},
		{"a lifetime of 0", func(c *v1alpha1.SandboxClaim) { c.Spec.ActiveDeadlineSeconds = ptr.To[int64](0) }, "spec.activeDeadlineSeconds"},
		{"both tokens", func(c *v1alpha1.SandboxClaim) {
			c.Spec.Auth.SecretRef = &v1alpha1.SecretReference{Name: "mine"}
		}, "set exactly one of tokenSHA256 and secretRef"},
		{"no token", func(c *v1alpha1.SandboxClaim) { c.Spec.Auth = v1alpha1.ClaimAuth{} }, "set exactly one of tokenSHA256 and secretRef"},
		{"a digest in upper case", func(c *v1alpha1.SandboxClaim) { c.Spec.Auth.TokenSHA256 = strings.ToUpper(c.Spec.Auth.TokenSHA256) }, "spec.auth.tokenSHA256"},
	} {
		sbc := newClaim(ns, "python", "claimant-token-0123456789abcdef", tc.mutate)
		expectAdmission(t, tc.name, e.Client.Create(t.Context(), sbc, client.DryRunAll), tc.want)
	}
	// What was asked cannot change once made; the lifetime can.
	sbc := newClaim(ns, "python", "claimant-token-0123456789abcdef")
	if err := e.Client.Create(t.Context(), sbc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*v1alpha1.SandboxClaim)
		want   string
	}{
		{"another pool", func(c *v1alpha1.SandboxClaim) { c.Spec.PoolName = "other" }, "poolName is immutable"},
		{"other env", func(c *v1alpha1.SandboxClaim) { c.Spec.Env = []v1alpha1.ClaimEnvVar{{Name: "K", Value: "v"}} }, "env is immutable"},
		{"another token", func(c *v1alpha1.SandboxClaim) { c.Spec.Auth.TokenSHA256 = digest }, "auth is immutable"},
		{"a longer lifetime", func(c *v1alpha1.SandboxClaim) { c.Spec.ActiveDeadlineSeconds = ptr.To[int64](7200) }, ""},
	} {
		up := sbc.DeepCopy()
		tc.mutate(up)
		expectAdmission(t, tc.name, e.Client.Update(t.Context(), up, client.DryRunAll), tc.want)
	}
}

// expectAdmission checks what the API server said to the case named name:
// admitted when want is "", else refused with a message holding want.
func expectAdmission(t *testing.T, name string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: refused: %v", name, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s: %v, want a refusal saying %q", name, err, want)
	}
}
