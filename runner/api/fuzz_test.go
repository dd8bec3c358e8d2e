package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeExecuteRequest hunts panics in decoding and validation, and
// checks that every accepted request is one the runner can run: one of argv
// and shell, no NUL byte anywhere execve would choke on, a cwd that stays
// below the work directory.
//
//	go test ./runner/api -run '^$' -fuzz FuzzDecodeExecuteRequest -fuzztime 30s
func FuzzDecodeExecuteRequest(f *testing.F) {
	for _, s := range []string{
		`{"argv":["echo","hi"]}`,
		`{"shell":"echo hi","stdin":"x","env":{"A":"b"},"cwd":"sub/dir","timeout_ms":100}`,
		`{"argv":[]}`,
		`{"argv":[""]}`,
		`{"argv":["a\u0000b"]}`,
		`{"cwd":"../x","argv":["true"]}`,
		`{"cwd":"/abs","argv":["true"]}`,
		`{"env":{"":"x"},"argv":["true"]}`,
		`{"argv":["true"]}{}`,
		`{"ARGV":["id"]}`,
		`{"argv":["true"],"argv":["id"]}`,
		`{"argv":["true"],"timeout_ms":9223372036855}`,
		`[]`,
		`null`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := DecodeExecuteRequest(strings.NewReader(body))
		if err != nil {
			return
		}
		if (len(req.Argv) > 0) == (req.Shell != "") {
			t.Fatalf("accepted a request with argv %q and shell %q", req.Argv, req.Shell)
		}
		if len(req.Argv) > 0 && req.Argv[0] == "" {
			t.Fatal("accepted an empty argv[0]")
		}
		all := append([]string{req.Shell, req.Cwd}, req.Argv...)
		for k, v := range req.Env {
			if k == "" || strings.Contains(k, "=") {
				t.Fatalf("accepted env key %q", k)
			}
			all = append(all, k, v)
		}
		for _, s := range all {
			if strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("accepted a NUL byte in %q", s)
			}
		}
		if req.Cwd != "" {
			c, err := CleanPath(req.Cwd)
			if err != nil || strings.HasPrefix(c, "/") || c == ".." || strings.HasPrefix(c, "../") {
				t.Fatalf("accepted cwd %q (clean %q, %v)", req.Cwd, c, err)
			}
		}
		if req.TimeoutMs < 0 || req.TimeoutMs > MaxTimeoutMs {
			t.Fatalf("accepted timeout_ms %d", req.TimeoutMs)
		}
		// What was accepted survives a round trip unchanged.
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeExecuteRequest(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
		if len(again.Argv) != len(req.Argv) || again.Shell != req.Shell || again.Cwd != req.Cwd {
			t.Fatalf("round trip changed %+v into %+v", req, again)
		}
	})
}

func TestCleanPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "", want: "."},
		{in: "a", want: "a"},
		{in: "a/./b/", want: "a/b"},
		{in: "a//b", want: "a/b"},
		{in: "..", bad: true},
		{in: "a/../b", bad: true},
		{in: "a/..", bad: true},
		{in: "/etc", bad: true},
		{in: "a\x00b", bad: true},
		{in: `a\..\b`, bad: true},
		{in: "...", want: "..."},
		{in: "..a", want: "..a"},
	}
	for _, tc := range tests {
		got, err := CleanPath(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q, bad=%v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// FuzzDecodeClaimRequest checks that every accepted claim sets a token the
// runner can compare and an environment execve accepts.
//
//	go test ./runner/api -run '^$' -fuzz FuzzDecodeClaimRequest -fuzztime 30s
func FuzzDecodeClaimRequest(f *testing.F) {
	for _, s := range []string{
		`{"protocol":2,"token_sha256":"abababababababababababababababababababababababababababababababab","claimant":"alice","env":{"A":"b"}}`,
		`{"protocol":1,"token_sha256":"abababababababababababababababababababababababababababababababab"}`,
		`{"protocol":2,"token_sha256":"short"}`,
		`{"protocol":2,"token_sha256":"abababababababababababababababababababababababababababababababab","env":{"A=B":"x"}}`,
		`{"protocol":2,"token_sha256":"abababababababababababababababababababababababababababababababab","claimant":"a\nb"}`,
		`{"protocol":2,"token_sha256":"abababababababababababababababababababababababababababababababab","unknown":1}`,
		`{"protocol":2,"token_sha256":"abababababababababababababababababababababababababababababababab"}{}`,
		`null`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := DecodeClaimRequest(strings.NewReader(body))
		if err != nil {
			return
		}
		if req.Protocol != ClaimProtocol || !IsSHA256Hex(req.TokenSHA256) {
			t.Fatalf("accepted protocol %d, digest %q", req.Protocol, req.TokenSHA256)
		}
		if strings.ContainsAny(req.Claimant, "\x00\r\n") {
			t.Fatalf("accepted claimant %q", req.Claimant)
		}
		for k, v := range req.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") || strings.IndexByte(v, 0) >= 0 {
				t.Fatalf("accepted env %q=%q", k, v)
			}
		}
	})
}
