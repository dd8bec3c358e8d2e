package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFilePath(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"a", "/files/a"},
		{"a/b c/d.txt", "/files/a/b%20c/d.txt"},
		{"/lead", "/files/lead"},
		{"q?x#y", "/files/q%3Fx%23y"},
		{"100%", "/files/100%25"},
	}
	for _, tc := range tests {
		if got := filePath(tc.in); got != tc.want {
			t.Errorf("filePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestRequestsAndErrors checks what the client sends (method, path, token)
// and how it reports a refusal, against a recording server.
func TestRequestsAndErrors(t *testing.T) {
	t.Parallel()
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, fmt.Sprintf("%s %s %s", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization")))
		if r.URL.Path == "/files/missing" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"opening \"missing\": no such file"}`)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := New(srv.URL+"/", "tok", srv.Client())
	ctx := t.Context()
	if err := c.PutFile(ctx, "dir/x y", strings.NewReader("data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteFile(ctx, "dir", true); err != nil {
		t.Fatal(err)
	}
	_, err := c.GetFile(ctx, "missing")
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 404 || e.Message != `opening "missing": no such file` || StatusCode(err) != 404 {
		t.Errorf("GetFile error %v, want a 404 Error with the runner's message", err)
	}
	want := []string{
		"PUT /files/dir/x%20y?mode=0755 Bearer tok",
		"DELETE /files/dir?recursive=true Bearer tok",
		"GET /files/missing Bearer tok",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}
