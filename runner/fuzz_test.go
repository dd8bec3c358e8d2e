package runner

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzResolvePath sends PUT, GET, DELETE and list requests with fuzzed paths
// through the real handler over a work directory whose neighbour holds a
// secret and which contains symlinks out. Nothing may change outside, and
// the secret may never be answered.
//
//	go test ./runner -run '^$' -fuzz FuzzResolvePath -fuzztime 30s
func FuzzResolvePath(f *testing.F) {
	for _, s := range []string{
		"a", "a/b/c", "../outside/secret", "..%2Foutside%2Fsecret", "%2e%2e/outside/secret",
		"dirlink/secret", "abslink/secret", "filelink", "inner/deep/secret", "/etc/passwd",
		"%2Fetc%2Fpasswd", "a%00b", "inner/../../outside/secret", ".", "", "dirlink/x/y",
	} {
		f.Add(s)
	}
	base := f.TempDir()
	work := filepath.Join(base, "work")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(work, "inner"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("SECRET"), 0o644); err != nil {
		f.Fatal(err)
	}
	for link, target := range map[string]string{
		"dirlink":    "../outside",
		"abslink":    outside,
		"filelink":   "../outside/secret",
		"inner/deep": "../../outside",
	} {
		if err := os.Symlink(target, filepath.Join(work, link)); err != nil {
			f.Fatal(err)
		}
	}
	s, err := New(Config{Workdir: work, MaxUploadBytes: 64})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })

	f.Fuzz(func(t *testing.T, p string) {
		for _, m := range []string{http.MethodPut, http.MethodGet, http.MethodDelete, "LIST"} {
			target := "/files/" + p
			method := m
			if m == "LIST" {
				method, target = http.MethodGet, "/files?dir="+url.QueryEscape(p)
			}
			u, err := url.ParseRequestURI(target)
			if err != nil {
				return
			}
			req := httptest.NewRequestWithContext(t.Context(), method, "/", strings.NewReader("PWNED"))
			req.URL = u
			req.RequestURI = target
			req.RemoteAddr = "127.0.0.1:1"
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if strings.Contains(rec.Body.String(), "SECRET") {
				t.Fatalf("%s %s leaked the outside secret", m, target)
			}
		}
		entries, err := os.ReadDir(outside)
		if err != nil || len(entries) != 1 {
			t.Fatalf("outside directory changed: %v %v", entries, err)
		}
		if b, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(b) != "SECRET" {
			t.Fatalf("outside secret changed: %q %v", b, err)
		}
	})
}
