package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sandbox.io/injector/runner/api"
)

func TestTokenChecks(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newTestRunner(t, Config{TokenFile: tokenFile})
	tests := []struct {
		name   string
		path   string
		header string
		proxy  string // the TokenHeader value
		want   int
	}{
		{name: "token header", path: "/status", proxy: "s3cret", want: 200},
		{name: "wrong token header", path: "/status", proxy: "nope", want: 401},
		{name: "token header wins over Authorization", path: "/status", proxy: "nope", header: "Bearer s3cret", want: 401},
		{name: "API server credentials beside the token header", path: "/status", proxy: "s3cret", header: "Bearer apiserver-token", want: 200},
		{name: "healthz needs no token", path: "/healthz", want: 200},
		{name: "readyz needs no token", path: "/readyz", want: 200},
		{name: "status without token", path: "/status", want: 401},
		{name: "metrics without token", path: "/metrics", want: 401},
		{name: "files without token", path: "/files", want: 401},
		{name: "wrong token", path: "/status", header: "Bearer nope", want: 401},
		{name: "token prefix", path: "/status", header: "Bearer s3cre", want: 401},
		{name: "token with suffix", path: "/status", header: "Bearer s3cret2", want: 401},
		{name: "not bearer", path: "/status", header: "Basic s3cret", want: 401},
		{name: "bare token", path: "/status", header: "s3cret", want: 401},
		{name: "right token", path: "/status", header: "Bearer s3cret", want: 200},
		{name: "scheme is case-insensitive", path: "/status", header: "bearer s3cret", want: 200},
		{name: "empty bearer", path: "/status", header: "Bearer ", want: 401},
		{name: "right token, unknown path", path: "/nope", header: "Bearer s3cret", want: 404},
		{name: "unknown path without token", path: "/nope", want: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, r.url+tc.path, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			if tc.proxy != "" {
				req.Header.Set(api.TokenHeader, tc.proxy)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("got %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func status(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/status", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestTokenRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	// Like a Secret volume: token -> ..data/token, and an update swaps ..data.
	write := func(gen, tok string) {
		t.Helper()
		d := filepath.Join(dir, gen)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "token"), []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(gen, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	write("gen1", "first")
	if err := os.Symlink("..data/token", tokenFile); err != nil {
		t.Fatal(err)
	}
	r := newTestRunner(t, Config{TokenFile: tokenFile})
	if got := status(t, r.url, "first"); got != 200 {
		t.Fatalf("first token: %d", got)
	}
	write("gen2", "second")
	if got := status(t, r.url, "first"); got != 401 {
		t.Errorf("old token after rotation: %d, want 401", got)
	}
	if got := status(t, r.url, "second"); got != 200 {
		t.Errorf("new token after rotation: %d, want 200", got)
	}
	// Emptied: the API closes, also to this loopback client.
	write("gen3", "\n")
	if got := status(t, r.url, ""); got != 403 {
		t.Errorf("empty token, loopback client: %d, want 403", got)
	}
	if got := status(t, r.url, "second"); got != 403 {
		t.Errorf("empty token, the old token: %d, want 403", got)
	}
	// The Secret updated in place to hold only a verifier: the token it
	// verifies opens the API, the file's new content does not.
	sum := sha256.Sum256([]byte("third"))
	verifier := "sha256:" + hex.EncodeToString(sum[:])
	write("gen4", verifier)
	if got := status(t, r.url, "third"); got != 200 {
		t.Errorf("the token of a verifier rotated in: %d, want 200", got)
	}
	if got := status(t, r.url, verifier); got != 401 {
		t.Errorf("the verifier itself as the token: %d, want 401", got)
	}
}

// TestNoTokenClosed: a runner without a token answers only its probes, to
// every client, loopback included (a mesh sidecar connects from loopback).
func TestNoTokenClosed(t *testing.T) {
	t.Parallel()
	for _, tokenFile := range []string{"", "missing", "empty"} {
		t.Run("token file "+tokenFile, func(t *testing.T) {
			t.Parallel()
			var path string
			if tokenFile != "" {
				path = filepath.Join(t.TempDir(), "token")
			}
			if tokenFile == "empty" {
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, err := New(Config{Workdir: t.TempDir(), TokenFile: path})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, tc := range []struct {
				remote, method, path string
				want                 int
			}{
				{"127.0.0.1:5000", "GET", "/status", 403},
				{"[::1]:5000", "POST", "/execute", 403},
				{"127.0.0.1:5000", "GET", "/files", 403},
				{"127.0.0.1:5000", "POST", "/claim", 403},
				{"10.244.0.7:5000", "GET", "/metrics", 403},
				{"127.0.0.1:5000", "GET", "/healthz", 200},
				{"10.244.0.7:5000", "GET", "/readyz", 200},
			} {
				req := httptest.NewRequestWithContext(t.Context(), tc.method, tc.path, strings.NewReader(`{"argv":["true"]}`))
				req.RemoteAddr = tc.remote
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code != tc.want {
					t.Errorf("%s %s from %s: got %d, want %d", tc.method, tc.path, tc.remote, rec.Code, tc.want)
				}
				if rec.Code == 403 && !strings.Contains(rec.Body.String(), "no API token is configured") {
					t.Errorf("403 without the reason: %s", rec.Body)
				}
			}
		})
	}
}

// TestNoTokenInsecureLoopback: the explicit opt-in opens the API to
// loopback clients only.
func TestNoTokenInsecureLoopback(t *testing.T) {
	t.Parallel()
	for _, tokenFile := range []string{"", "missing", "empty"} {
		t.Run("token file "+tokenFile, func(t *testing.T) {
			t.Parallel()
			var path string
			if tokenFile != "" {
				path = filepath.Join(t.TempDir(), "token")
			}
			if tokenFile == "empty" {
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, err := New(Config{Workdir: t.TempDir(), TokenFile: path, InsecureLoopback: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tests := []struct {
				remote, path string
				want         int
			}{
				{"127.0.0.1:5000", "/status", 200},
				{"[::1]:5000", "/status", 200},
				{"[::ffff:127.0.0.1]:5000", "/status", 200},
				{"10.244.0.7:5000", "/status", 403},
				{"10.244.0.7:5000", "/files", 403},
				{"[fd00::1]:5000", "/metrics", 403},
				{"10.244.0.7:5000", "/healthz", 200},
				{"10.244.0.7:5000", "/readyz", 200},
			}
			for _, tc := range tests {
				req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, tc.path, nil)
				req.RemoteAddr = tc.remote
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code != tc.want {
					t.Errorf("%s from %s: got %d, want %d", tc.path, tc.remote, rec.Code, tc.want)
				}
				if rec.Code == 403 && !strings.Contains(rec.Body.String(), "no API token is configured") {
					t.Errorf("403 without the reason: %s", rec.Body)
				}
			}
		})
	}
}

// TestTokenVerifierFile: a token file that holds only the token's verifier
// (what a namespace's shared Secret should hold) opens the API to the token
// and to nothing else: not to the file's content, which code in the sandbox
// can read; a malformed verifier closes the API instead of becoming a token.
func TestTokenVerifierFile(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("s3cret"))
	verifier := "sha256:" + hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name, file string
		want       map[string]int // token -> status
	}{
		{"verifier", verifier + "\n", map[string]int{"s3cret": 200, verifier: 401, hex.EncodeToString(sum[:]): 401, "": 401}},
		{"upper-case hex", "sha256:" + strings.ToUpper(hex.EncodeToString(sum[:])), map[string]int{"s3cret": 403, "sha256:" + strings.ToUpper(hex.EncodeToString(sum[:])): 403}},
		{"short digest", verifier[:40], map[string]int{"s3cret": 403, verifier[:40]: 403, "": 403}},
		{"raw token", "s3cret", map[string]int{"s3cret": 200, verifier: 401}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tokenFile := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(tokenFile, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			// InsecureLoopback: a malformed verifier closes the API to this
			// loopback client too.
			r := newTestRunner(t, Config{TokenFile: tokenFile, InsecureLoopback: true})
			for token, want := range tc.want {
				if got := status(t, r.url, token); got != want {
					t.Errorf("token %q: %d, want %d", token, got, want)
				}
			}
			if tc.want["s3cret"] == http.StatusForbidden {
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, r.url+"/status", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.Contains(string(body), "holds no token but a malformed verifier") {
					t.Errorf("the refusal says %s, want it to name the malformed verifier", body)
				}
				if strings.Contains(string(body), strings.TrimSpace(tc.file)[len("sha256:"):]) {
					t.Errorf("the refusal %s shows the token file's content to an unauthenticated client", body)
				}
			}
		})
	}
}
