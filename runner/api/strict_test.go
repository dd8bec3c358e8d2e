package api

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodeStrict replays request bodies that encoding/json alone accepts
// with a meaning the sender may not have intended (or that a second parser
// would read differently), and checks that they are refused with a message
// naming the key at fault.
func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, wantErr string
	}{
		{"exact names", `{"argv":["true"],"env":{"A":"1","a":"2"},"timeout_ms":5}`, ""},
		{"upper-case field name", `{"ARGV":["id"]}`, `unknown field "ARGV" in body (names are case sensitive)`},
		{"mixed-case field name", `{"argv":["true"],"Timeout_Ms":1}`, `unknown field "Timeout_Ms"`},
		{"duplicate key", `{"argv":["true"],"argv":["id"]}`, `key "argv" appears twice`},
		{"duplicate key differing in case", `{"shell":"true","Shell":"id"}`, `unknown field "Shell"`},
		{"duplicate env key", `{"argv":["true"],"env":{"A":"1","A":"2"}}`, `key "A" appears twice in body.env`},
		{"unknown field", `{"argv":["true"],"user":"root"}`, `unknown field "user"`},
		{"trailing object", `{"argv":["true"]}{"argv":["id"]}`, "data after the JSON value"},
		{"trailing bracket", `{"argv":["true"]}]`, "data after the JSON value"},
		{"trailing garbage", `{"argv":["true"]} x`, "data after the JSON value"},
		{"empty body", ``, "the body is empty"},
		{"deep nesting", `{"argv":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "nests deeper"},
		{"wrong type", `{"argv":"true"}`, "cannot unmarshal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var req ExecuteRequest
			err := DecodeStrict(strings.NewReader(tc.body), &req)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused %s: %v", tc.body, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("body %s: error %v, want one containing %q", tc.body, err, tc.wantErr)
			}
		})
	}
}

func TestDecodeRequestsAreStrict(t *testing.T) {
	t.Parallel()
	if _, err := DecodeExecuteRequest(strings.NewReader(`{"ARGV":["id"]}`)); !errors.Is(err, ErrStrictJSON) {
		t.Errorf("execute with ARGV: %v, want ErrStrictJSON", err)
	}
	if _, err := DecodeClaimRequest(strings.NewReader(`{"token":"0123456789abcdef","token":"fedcba9876543210"}`)); !errors.Is(err, ErrStrictJSON) {
		t.Errorf("claim with two tokens: %v, want ErrStrictJSON", err)
	}
}

func TestTimeoutBound(t *testing.T) {
	t.Parallel()
	for _, ms := range []int64{MaxTimeoutMs + 1, 9223372036855, 1<<63 - 1} {
		req := ExecuteRequest{Argv: []string{"true"}, TimeoutMs: ms}
		if err := req.Validate(); err == nil || !strings.Contains(err.Error(), "timeout_ms") {
			t.Errorf("timeout_ms %d: %v, want a refusal naming timeout_ms", ms, err)
		}
	}
	req := ExecuteRequest{Argv: []string{"true"}, TimeoutMs: MaxTimeoutMs}
	if err := req.Validate(); err != nil {
		t.Errorf("timeout_ms at the maximum: %v", err)
	}
}
