package api

import (
	"encoding/json"
	"fmt"
	"reflect"
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

// FuzzParseProbe checks what the runner accepts as --liveness-probe (the
// webhook encodes the pod's own probe there): exactly one JSON value with
// the field names as written, one handler the runner can run, the
// API server's limits, and an Encode that reads back the same probe.
//
//	go test ./runner/api -run '^$' -fuzz FuzzParseProbe -fuzztime 30s
func FuzzParseProbe(f *testing.F) {
	for _, s := range []string{
		`{"exec":{"command":["cat","/tmp/healthy"]},"periodSeconds":5}`,
		`{"httpGet":{"port":8080,"path":"/healthz","httpHeaders":[{"name":"X-A","value":"b"}]},"failureThreshold":1}`,
		`{"tcpSocket":{"port":"http"}}`,
		`{"tcpSocket":{"port":80},"terminationGracePeriodSeconds":3}`,
		`{"tcpSocket":{"port":80}}]`,
		`{"tcpSocket":{"port":80}}}`,
		`{"TCPSOCKET":{"port":80}}`,
		`{"tcpSocket":{"port":80},"tcpSocket":{"port":81}}`,
		`{"httpGet":{"port":{"Number":80}}}`,
		`{"grpc":{"port":9000}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProbe(s)
		if err != nil {
			return
		}
		if !json.Valid([]byte(s)) {
			t.Fatalf("accepted %q, which is not one JSON value", s)
		}
		if err := probeKeysExact(s); err != nil {
			t.Fatalf("accepted %q: %v", s, err)
		}
		handlers := 0
		for _, set := range []bool{p.Exec != nil, p.HTTPGet != nil, p.TCPSocket != nil} {
			if set {
				handlers++
			}
		}
		if handlers != 1 || p.GRPC != nil {
			t.Fatalf("accepted %q with %d handlers the runner runs (grpc %v)", s, handlers, p.GRPC != nil)
		}
		if p.TimeoutSeconds < 1 || p.PeriodSeconds < 1 || p.FailureThreshold < 1 || p.SuccessThreshold != 1 || p.InitialDelaySeconds < 0 {
			t.Fatalf("accepted %q with out-of-range timing %+v", s, p)
		}
		for _, port := range []*Port{portOf(p.HTTPGet), tcpPortOf(p.TCPSocket)} {
			if port != nil && (port.Name != "" || port.Number < 1 || port.Number > 65535) {
				t.Fatalf("accepted %q with port %+v", s, *port)
			}
		}
		back, err := ParseProbe(p.Encode())
		if err != nil {
			t.Fatalf("accepted %q, but not its encoding %s: %v", s, p.Encode(), err)
		}
		if !reflect.DeepEqual(back, p) {
			t.Fatalf("%q read back from its encoding %s as %+v, want %+v", s, p.Encode(), back, p)
		}
	})
}

func portOf(h *HTTPGetAction) *Port {
	if h == nil {
		return nil
	}
	return &h.Port
}

func tcpPortOf(t *TCPSocketAction) *Port {
	if t == nil {
		return nil
	}
	return &t.Port
}

// probeFieldNames are the JSON names of every field of Probe and of the
// types in it, as written.
var probeFieldNames = map[string]bool{
	"exec": true, "command": true, "httpGet": true, "path": true, "port": true, "host": true,
	"scheme": true, "httpHeaders": true, "name": true, "value": true, "protocol": true,
	"tcpSocket": true, "grpc": true, "service": true, "mode": true, "initialDelaySeconds": true,
	"timeoutSeconds": true, "periodSeconds": true, "successThreshold": true, "failureThreshold": true,
	"terminationGracePeriodSeconds": true,
}

// probeKeysExact walks the JSON of s and fails on a key that is not a
// field name as written, or that appears twice in one object.
func probeKeysExact(s string) error {
	dec := json.NewDecoder(strings.NewReader(s))
	// One entry per open container: the keys seen, nil for an array.
	var open []map[string]bool
	expectKey := func() bool { return len(open) > 0 && open[len(open)-1] != nil }
	afterKey := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end (or an error the parser already refused)
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				open = append(open, map[string]bool{})
			case '[':
				open = append(open, nil)
			default:
				open = open[:len(open)-1]
			}
			afterKey = false
		case string:
			if expectKey() && !afterKey {
				if !probeFieldNames[v] {
					return fmt.Errorf("key %q is no field name as written", v)
				}
				if open[len(open)-1][v] {
					return fmt.Errorf("key %q appears twice in one object", v)
				}
				open[len(open)-1][v] = true
				afterKey = true
				continue
			}
			afterKey = false
		default:
			afterKey = false
		}
	}
}
