package runner

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sandbox.io/injector/runner/api"
	"sandbox.io/injector/runner/client"
)

const (
	claimCredential = "claim-credential-0123456789abcdef"
	freshToken      = "claimant-token-abcdefghij"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// claimRunner is a warm sandbox: its runner holds only the verifier of
// claimCredential, as the webhook configures pool pods.
func claimRunner(t *testing.T) *testRunner {
	t.Helper()
	r := newTestRunner(t, Config{ClaimVerifier: "sha256:" + sha256Hex(claimCredential)})
	r.client.Token = claimCredential
	return r
}

func claimReq(token string) api.ClaimRequest {
	return api.ClaimRequest{Protocol: api.ClaimProtocol, TokenSHA256: sha256Hex(token)}
}

func do(t *testing.T, method, url, token, body string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set(api.TokenHeader, token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAttackWarmPodBeforeClaim: before its claim, a warm sandbox answers
// nothing but its probes and POST /claim with the claim credential; the
// credential itself opens nothing else.
func TestAttackWarmPodBeforeClaim(t *testing.T) {
	t.Parallel()
	r := claimRunner(t)
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
		{"GET", "/status", "", 401},
		{"POST", "/execute", "", 401},
		{"POST", "/execute", "guessed-token-0123456789", 403},
		{"POST", "/execute", claimCredential, 403},
		{"PUT", "/files/planted", claimCredential, 403},
		{"GET", "/files", claimCredential, 403},
		{"GET", "/status", claimCredential, 403},
		{"GET", "/metrics", claimCredential, 403},
		{"POST", "/claim", "guessed-token-0123456789", 401},
	} {
		if got := do(t, tc.method, r.url+tc.path, tc.token, `{"argv":["true"]}`); got != tc.want {
			t.Errorf("%s %s with %q: %d, want %d", tc.method, tc.path, tc.token, got, tc.want)
		}
	}
	if r.srv.claimStatus() != nil {
		t.Fatal("claimed by a refused request")
	}
}

func TestClaimSwitchesTokenAndAddsEnv(t *testing.T) {
	t.Parallel()
	r := claimRunner(t)
	req := claimReq(freshToken)
	req.Claimant = "team-a/alice"
	req.Env = map[string]string{"SANDBOX_USER": "alice", "PATH": "/claimed/bin:/usr/bin:/bin"}
	st, err := r.client.Claim(t.Context(), req)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if st.Claimant != "team-a/alice" || st.ClaimedAt.IsZero() || strings.Join(st.EnvKeys, ",") != "PATH,SANDBOX_USER" {
		t.Errorf("claim answer: %+v", st)
	}
	if got := status(t, r.url, claimCredential); got != 401 {
		t.Errorf("claim credential on /status after the claim: %d, want 401", got)
	}
	// The same claim again (a controller retrying after a failover) is
	// answered as before; another digest is a conflict.
	if again, err := r.client.Claim(t.Context(), req); err != nil || !again.ClaimedAt.Equal(st.ClaimedAt) {
		t.Errorf("repeated claim: %+v, %v; want the first claim's answer", again, err)
	}
	if _, err := r.client.Claim(t.Context(), claimReq("someone-else-0123456789")); client.StatusCode(err) != 409 {
		t.Errorf("claim with another digest after the claim: %v, want 409", err)
	}
	if got := status(t, r.url, freshToken); got != 200 {
		t.Errorf("claimant token: %d, want 200", got)
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
	if full.Claim == nil || full.Claim.Claimant != "team-a/alice" {
		t.Errorf("status claim = %+v, want claimant team-a/alice", full.Claim)
	}
}

func TestClaimOnceOnly(t *testing.T) {
	t.Parallel()
	r := claimRunner(t)
	// Many claims race with the credential; exactly one wins and the others
	// get 409 Conflict, whether they were authorized before the winner
	// switched the token or not.
	var wg sync.WaitGroup
	codes := make([]int, 12)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := claimReq(fmt.Sprintf("%s-%d", freshToken, i))
			req.Claimant = fmt.Sprint(i)
			_, err := client.New(r.url, claimCredential, nil).Claim(t.Context(), req)
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
			t.Errorf("claim %d: status %d", i, code)
		}
	}
	if won != 1 {
		t.Fatalf("%d claims won (%v), want exactly 1", won, codes)
	}
	winner := fmt.Sprintf("%s-%s", freshToken, r.srv.claimStatus().Claimant)
	if _, err := client.New(r.url, winner, nil).Claim(t.Context(), claimReq("another-token-0123456789")); client.StatusCode(err) != 409 {
		t.Errorf("second claim by the winner: %v, want 409", err)
	}
	if got := status(t, r.url, winner); got != 200 {
		t.Errorf("winner's token after the refused second claim: %d, want 200", got)
	}
}

func TestClaimRefusals(t *testing.T) {
	t.Parallel()
	r := claimRunner(t)
	old := claimReq(freshToken)
	old.Protocol = 1
	badEnv := claimReq(freshToken)
	badEnv.Env = map[string]string{"A=B": "x"}
	for _, tc := range []struct {
		name string
		req  api.ClaimRequest
		want string
	}{
		{"older protocol", old, "claim protocol 1 is not supported: this runner speaks claim protocol 2, so the claim controller (sandbox-webhook) is older"},
		{"not a digest", api.ClaimRequest{Protocol: api.ClaimProtocol, TokenSHA256: freshToken}, "64 lower-case hex"},
		{"upper-case digest", api.ClaimRequest{Protocol: api.ClaimProtocol, TokenSHA256: strings.ToUpper(sha256Hex(freshToken))}, "64 lower-case hex"},
		{"bad env key", badEnv, `env key "A=B"`},
	} {
		_, err := r.client.Claim(t.Context(), tc.req)
		if client.StatusCode(err) != 400 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want 400 mentioning %q", tc.name, err, tc.want)
		}
	}
	if r.srv.claimStatus() != nil {
		t.Fatal("claimed by a refused request")
	}
	// A token file on a warm sandbox is not read: the verifier rules.
	if got := status(t, r.url, ""); got != 401 {
		t.Errorf("no credential: %d, want 401", got)
	}
}

// TestClaimStaleRequestRefused: a second POST /claim authorized with the
// credential before the first claim, whose body arrives after it, is
// refused and changes nothing.
func TestClaimStaleRequestRefused(t *testing.T) {
	t.Parallel()
	r := claimRunner(t)
	u, _ := url.Parse(r.url)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := fmt.Sprintf(`{"protocol":%d,"token_sha256":%q}`, api.ClaimProtocol, sha256Hex("attacker-token-0123456789"))
	fmt.Fprintf(conn, "POST /claim HTTP/1.1\r\nHost: x\r\n%s: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", api.TokenHeader, claimCredential, len(body))
	// Wait until the server has authorized the request (it is in flight).
	waitInflight(t, r.srv, 1)
	if _, err := r.client.Claim(t.Context(), claimReq(freshToken)); err != nil {
		t.Fatalf("claim: %v", err)
	}
	fmt.Fprint(conn, body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("stale claim: %d, want 409", resp.StatusCode)
	}
	if got := status(t, r.url, "attacker-token-0123456789"); got != 401 {
		t.Errorf("stale claim's token: %d, want 401", got)
	}
	if got := status(t, r.url, freshToken); got != 200 {
		t.Errorf("claimant token: %d, want 200", got)
	}
}

func waitInflight(t *testing.T, s *Server, n int) {
	t.Helper()
	for ctx := t.Context(); ctx.Err() == nil; {
		s.inflight.mu.Lock()
		got := len(s.inflight.cancels)
		s.inflight.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ctx.Done():
		case <-timeAfter(5):
		}
	}
	t.Fatalf("never %d requests in flight", n)
}

// TestInflightNewEpochCancels: a claim cancels what runs under the earlier
// credential, and nothing authorized under it starts afterwards.
func TestInflightNewEpochCancels(t *testing.T) {
	t.Parallel()
	var epoch atomic.Uint64
	var f inflight
	ctx, done, ok := f.begin(context.Background(), 0, &epoch)
	if !ok {
		t.Fatal("begin refused the current epoch")
	}
	defer done()
	if n := f.newEpoch(&epoch); n != 1 {
		t.Errorf("newEpoch cancelled %d, want 1", n)
	}
	if ctx.Err() == nil {
		t.Error("the request of the earlier epoch was not cancelled")
	}
	if _, _, ok := f.begin(context.Background(), 0, &epoch); ok {
		t.Error("a request of the earlier epoch began after the claim")
	}
	if _, done2, ok := f.begin(context.Background(), 1, &epoch); !ok {
		t.Error("a request of the current epoch was refused")
	} else {
		done2()
	}
}

func timeAfter(ms int) <-chan time.Time { return time.After(time.Duration(ms) * time.Millisecond) }
