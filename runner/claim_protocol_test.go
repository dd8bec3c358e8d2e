package runner

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"sandbox.io/injector/runner/api"
)

// TestClaimProtocolMismatch: the runner's side of a rollout, where claim
// controllers and runners of two releases meet. A controller of another
// claim protocol, older (protocol 1 sent the token itself, with no
// protocol field) or newer (with fields this runner does not know), gets
// 400 with a message that says which side is older and what to do, and
// the runner's protocol in claim_protocol; the runner stays unclaimed and
// still takes a claim of its own protocol, whose answer names it.
func TestClaimProtocolMismatch(t *testing.T) {
	t.Parallel()
	r := claimRunner(t)
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{
			name: "older controller (protocol 1)",
			body: `{"claimant":"ns/old","token":"claimant-token-0123456789abcdef","env":{"A":"b"}}`,
			want: []string{"claim protocol 1 (a request without a protocol field) is not supported", "speaks claim protocol 2",
				"claim controller (sandbox-webhook) is older than the runner", "helm upgrade"},
		},
		{
			name: "newer controller (protocol 3)",
			body: `{"protocol":3,"claimant":"ns/new","token_sha256":"` + sha256Hex(freshToken) + `","lease":"60s"}`,
			want: []string{"claim protocol 3 is not supported", "speaks claim protocol 2", "older than the claim controller",
				"replace warm pods with the chart's current runner", "retry"},
		},
		{
			name: "newer controller, a body this runner could read",
			body: `{"protocol":3,"token_sha256":"` + sha256Hex(freshToken) + `"}`,
			want: []string{"claim protocol 3 is not supported", "older than the claim controller"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, r.url+"/claim", strings.NewReader(tc.body))
			req.Header.Set(api.TokenHeader, claimCredential)
			req.Header.Set("Content-Type", api.ContentTypeJSON)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d (%s), want 400", resp.StatusCode, body)
			}
			var e api.Error
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("answer %s: %v", body, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(e.Error, w) {
					t.Errorf("error %q does not say %q", e.Error, w)
				}
			}
			if e.ClaimProtocol != api.ClaimProtocol || api.ClaimProtocolOf(body) != api.ClaimProtocol {
				t.Errorf("claim_protocol %d, want %d", e.ClaimProtocol, api.ClaimProtocol)
			}
		})
	}
	if r.srv.claimStatus() != nil {
		t.Fatal("claimed by a request of another protocol")
	}
	st, err := r.client.Claim(t.Context(), claimReq(freshToken))
	if err != nil {
		t.Fatalf("claim of the runner's own protocol after the refusals: %v", err)
	}
	if st.Protocol != api.ClaimProtocol {
		t.Errorf("claim answer protocol %d, want %d", st.Protocol, api.ClaimProtocol)
	}
}
