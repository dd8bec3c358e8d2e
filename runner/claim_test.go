package runner

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"sandbox.io/injector/runner/api"
	"sandbox.io/injector/runner/client"
)

const (
	poolToken  = "pool-token-0123456789"
	freshToken = "claimant-token-abcdefghij"
)

func claimRunner(t *testing.T) (*testRunner, string) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(poolToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newTestRunner(t, Config{TokenFile: tokenFile})
	r.client.Token = poolToken
	return r, tokenFile
}

func TestClaimSwitchesTokenAndAddsEnv(t *testing.T) {
	t.Parallel()
	r, tokenFile := claimRunner(t)
	st, err := r.client.Claim(t.Context(), api.ClaimRequest{
		Claimant: "alice", Token: freshToken,
		Env: map[string]string{"SANDBOX_USER": "alice", "PATH": "/claimed/bin:/usr/bin:/bin"},
	})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if st.Claimant != "alice" || st.ClaimedAt.IsZero() || strings.Join(st.EnvKeys, ",") != "PATH,SANDBOX_USER" {
		t.Errorf("claim answer: %+v", st)
	}

	if got := status(t, r.url, poolToken); got != 401 {
		t.Errorf("pool token after the claim: %d, want 401", got)
	}
	if got := status(t, r.url, freshToken); got != 200 {
		t.Errorf("claimant token: %d, want 200", got)
	}
	// A rewritten token file no longer counts: the claim fixed the token.
	if err := os.WriteFile(tokenFile, []byte("rotated-pool-token-000"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := status(t, r.url, "rotated-pool-token-000"); got != 401 {
		t.Errorf("a new pool token after the claim: %d, want 401", got)
	}

	c := client.New(r.url, freshToken, nil)
	res, err := c.Execute(t.Context(), api.ExecuteRequest{Shell: `echo "$SANDBOX_USER $PATH $EXTRA"`, Env: map[string]string{"EXTRA": "x", "SANDBOX_USER": "bob"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "bob /claimed/bin:/usr/bin:/bin x\n"; res.Stdout != want {
		t.Errorf("execute after the claim printed %q, want %q (the request's env wins over the claim's)", res.Stdout, want)
	}
	full, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if full.Claim == nil || full.Claim.Claimant != "alice" {
		t.Errorf("status claim = %+v, want claimant alice", full.Claim)
	}
}

func TestClaimOnceOnly(t *testing.T) {
	t.Parallel()
	r, _ := claimRunner(t)
	// Many claimants race with the pool token; exactly one wins and the
	// others get 409 Conflict, whether they were authorized before the
	// winner switched the token or not: a loser learns the sandbox is
	// taken, not that its token is wrong.
	var wg sync.WaitGroup
	codes := make([]int, 12)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(r.url, poolToken, nil)
			_, err := c.Claim(t.Context(), api.ClaimRequest{Claimant: "c" + string(rune('a'+i)), Token: freshToken + string(rune('a'+i))})
			codes[i] = client.StatusCode(err)
			if err == nil {
				codes[i] = 200
			}
		}()
	}
	wg.Wait()
	won := 0
	for i, code := range codes {
		switch code {
		case 200:
			won++
		case 409:
		default:
			t.Errorf("claimant %d: status %d", i, code)
		}
	}
	if won != 1 {
		t.Fatalf("%d claims won (%v), want exactly 1", won, codes)
	}
	st := r.srv.claimStatus()
	if st == nil {
		t.Fatal("no claim recorded")
	}
	winner := freshToken + st.Claimant[1:]
	// The winner's own second claim is a conflict, not a takeover.
	c := client.New(r.url, winner, nil)
	if _, err := c.Claim(t.Context(), api.ClaimRequest{Token: "another-token-0123456789"}); client.StatusCode(err) != 409 {
		t.Errorf("second claim: %v, want 409", err)
	}
	if got := status(t, r.url, winner); got != 200 {
		t.Errorf("winner's token after the refused second claim: %d, want 200", got)
	}
	// Only /claim says "taken" to the pool token; the rest of the API
	// refuses it as any wrong token.
	if got := status(t, r.url, poolToken); got != 401 {
		t.Errorf("/status with the pool token after the claim: %d, want 401", got)
	}
}

func TestClaimRefusals(t *testing.T) {
	t.Parallel()
	r, _ := claimRunner(t)
	tests := []struct {
		name string
		req  api.ClaimRequest
		want string
	}{
		{"short token", api.ClaimRequest{Token: "short"}, "at least 16"},
		{"token with newline", api.ClaimRequest{Token: "0123456789abcdef\nxyz"}, "line breaks"},
		{"bad env key", api.ClaimRequest{Token: freshToken, Env: map[string]string{"A=B": "x"}}, `env key "A=B"`},
	}
	for _, tc := range tests {
		_, err := r.client.Claim(t.Context(), tc.req)
		if client.StatusCode(err) != 400 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want 400 mentioning %q", tc.name, err, tc.want)
		}
	}
	// Nothing was claimed by the refused requests.
	if got := status(t, r.url, poolToken); got != 200 {
		t.Errorf("pool token after refused claims: %d, want 200", got)
	}
	unauth := client.New(r.url, "wrong-token-000000000", nil)
	if _, err := unauth.Claim(t.Context(), api.ClaimRequest{Token: freshToken}); client.StatusCode(err) != 401 {
		t.Errorf("claim with a wrong token: %v, want 401", err)
	}
}
