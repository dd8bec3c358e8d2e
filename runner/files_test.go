package runner

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"sandbox.io/injector/runner/api"
	"sandbox.io/injector/runner/client"
)

func TestFilesRoundTrip(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{})
	ctx := t.Context()
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	if err := r.client.PutFile(ctx, "a/b/c.bin", bytes.NewReader(data), 0); err != nil {
		t.Fatal(err)
	}
	if err := r.client.PutFile(ctx, "a/run me.sh", strings.NewReader("#!/bin/sh\necho ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rc, err := r.client.GetFile(ctx, "a/b/c.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes, want the %d uploaded", len(got), len(data))
	}
	// An uploaded script runs with the mode it was given.
	res, err := r.client.Execute(ctx, api.ExecuteRequest{Argv: []string{"./run me.sh"}, Cwd: "a"})
	if err != nil || res.Stdout != "ran\n" {
		t.Fatalf("running the uploaded script: %v %+v", err, res)
	}
	list, err := r.client.List(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := []api.FileInfo{
		{Name: "b", Dir: true, Mode: "0755"},
		{Name: "run me.sh", Size: 19, Mode: "0755"},
	}
	if diff := cmp.Diff(want, list, cmpopts.IgnoreFields(api.FileInfo{}, "Mtime", "Size")); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if list[1].Size != 19 || time.Since(list[1].Mtime) > time.Hour {
		t.Errorf("size/mtime: %+v", list[1])
	}
	// Range requests work.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/files/a/b/c.bin", nil)
	req.Header.Set("Range", "bytes=10-14")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(part) != "01234" {
		t.Errorf("range: %d %q", resp.StatusCode, part)
	}
	// Overwrite replaces, and leaves no temporary files.
	if err := r.client.PutFile(ctx, "a/b/c.bin", strings.NewReader("small"), 0); err != nil {
		t.Fatal(err)
	}
	if list, _ := r.client.List(ctx, "a/b"); len(list) != 1 || list[0].Size != 5 {
		t.Errorf("after overwrite: %+v", list)
	}
	// Deleting: a non-empty directory needs recursive.
	if err := r.client.DeleteFile(ctx, "a", false); client.StatusCode(err) != http.StatusConflict {
		t.Errorf("deleting a non-empty directory: %v, want 409", err)
	}
	if err := r.client.DeleteFile(ctx, "a/b/c.bin", false); err != nil {
		t.Errorf("deleting a file: %v", err)
	}
	if err := r.client.DeleteFile(ctx, "a", true); err != nil {
		t.Errorf("deleting recursively: %v", err)
	}
	if _, err := r.client.GetFile(ctx, "a/b/c.bin"); client.StatusCode(err) != http.StatusNotFound {
		t.Errorf("get after delete: %v, want 404", err)
	}
	if err := r.client.DeleteFile(ctx, "a", false); client.StatusCode(err) != http.StatusNotFound {
		t.Errorf("delete of a missing path: %v, want 404", err)
	}
	if list, err := r.client.List(ctx, ""); err != nil || len(list) != 0 {
		t.Errorf("workdir after delete: %v %+v", err, list)
	}
}

func TestFilesUploadLimit(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{MaxUploadBytes: 100})
	err := r.client.PutFile(t.Context(), "big", bytes.NewReader(make([]byte, 101)), 0)
	if client.StatusCode(err) != http.StatusRequestEntityTooLarge || !strings.Contains(err.Error(), "limit of 100 bytes") {
		t.Fatalf("got %v, want 413", err)
	}
	if err := r.client.PutFile(t.Context(), "fits", bytes.NewReader(make([]byte, 100)), 0); err != nil {
		t.Fatalf("upload at the limit: %v", err)
	}
	entries, _ := os.ReadDir(r.workdir)
	if len(entries) != 1 || entries[0].Name() != "fits" {
		t.Errorf("work directory holds %v, want only fits (no partial upload)", entries)
	}
}

// rawRequest sends a request line exactly as given (no client-side
// cleaning of the path) and returns the status and body.
func rawRequest(t *testing.T, base, method, target, body string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", method, target, len(body), body)
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// snapshot lists every path below dir with its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(b)
		} else {
			out[rel] = d.Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHostilePaths(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	work := filepath.Join(base, "work")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{work, outside, filepath.Join(work, "inner")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustLink := func(target, p string) {
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(filepath.Join(outside, "secret"), "SECRET")
	mustWrite(filepath.Join(work, "inner", "ok"), "fine")
	mustLink("../outside", filepath.Join(work, "dirlink"))          // relative, out
	mustLink(outside, filepath.Join(work, "abslink"))               // absolute, out
	mustLink("../outside/secret", filepath.Join(work, "filelink"))  // file, out
	mustLink("../../outside", filepath.Join(work, "inner", "deep")) // from a subdirectory
	mustLink("inner", filepath.Join(work, "innerlink"))             // stays inside: allowed
	before := snapshot(t, outside)

	r := newTestRunner(t, Config{Workdir: work})
	tests := []struct {
		method, target string
	}{
		{"GET", "/files/../outside/secret"},
		{"GET", "/files/%2e%2e/outside/secret"},
		{"GET", "/files/..%2Foutside%2Fsecret"},
		{"GET", "/files/%2F" + strings.ReplaceAll(strings.TrimPrefix(outside, "/"), "/", "%2F") + "%2Fsecret"},
		{"GET", "/files//" + strings.TrimPrefix(outside, "/") + "/secret"},
		{"GET", "/files/inner/..%2F..%2Foutside/secret"},
		{"GET", "/files/dirlink/secret"},
		{"GET", "/files/abslink/secret"},
		{"GET", "/files/filelink"},
		{"GET", "/files/inner/deep/secret"},
		{"GET", "/files/inner%5C..%5C..%5Coutside%5Csecret"},
		{"GET", "/files/secret%00.txt"},
		{"GET", "/files?dir=dirlink"},
		{"GET", "/files?dir=../outside"},
		{"GET", "/files?dir=" + outside},
		{"GET", "/files?dir=inner/deep"},
		{"PUT", "/files/dirlink/new"},
		{"PUT", "/files/abslink/new"},
		{"PUT", "/files/..%2Foutside%2Fnew"},
		{"PUT", "/files/inner/deep/new"},
		{"PUT", "/files/dirlink/sub/dir/new"},
		{"PUT", "/files/%2F" + strings.ReplaceAll(strings.TrimPrefix(outside, "/"), "/", "%2F") + "%2Fnew"},
		{"DELETE", "/files/dirlink/secret"},
		{"DELETE", "/files/abslink/secret"},
		{"DELETE", "/files/..%2Foutside%2Fsecret"},
		{"DELETE", "/files/inner/deep/secret"},
		{"POST", "/execute"}, // body below: cwd through a symlink out
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			t.Parallel()
			body := ""
			if tc.method == "PUT" {
				body = "PWNED"
			}
			if tc.method == "POST" {
				body = `{"argv":["true"],"cwd":"dirlink"}`
			}
			code, got := rawRequest(t, r.url, tc.method, tc.target, body)
			if code/100 == 2 {
				t.Errorf("got %d %q, want a refusal", code, got)
			}
			if strings.Contains(got, "SECRET") {
				t.Errorf("answer leaks the outside file: %q", got)
			}
		})
	}
	t.Run("inside symlink and file symlink replacement", func(t *testing.T) {
		t.Parallel()
		if code, got := rawRequest(t, r.url, "GET", "/files/innerlink/ok", ""); code != 200 || got != "fine" {
			t.Errorf("symlink inside the workdir: %d %q, want 200 fine", code, got)
		}
	})
	t.Cleanup(func() {
		// Writing through filelink replaces the link itself (rename), never
		// the outside file; check that last, then compare the outside tree.
		if code, _ := rawRequest(t, r.url, "PUT", "/files/filelink", "PWNED"); code/100 != 2 {
			t.Errorf("replacing a symlink: %d", code)
		}
		if diff := cmp.Diff(before, snapshot(t, outside)); diff != "" {
			t.Errorf("the outside directory changed (-before +after):\n%s", diff)
		}
	})
}

// TestSymlinkSwapDuringWrite races uploads into work/d against a loop that
// swaps d between a real directory and a symlink to the outside. os.Root
// resolves each component with openat and O_NOFOLLOW, so no upload may
// land outside, whatever the timing.
func TestSymlinkSwapDuringWrite(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	work := filepath.Join(base, "work")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{work, outside, filepath.Join(work, "realdir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../outside", filepath.Join(work, "evil")); err != nil {
		t.Fatal(err)
	}
	r := newTestRunner(t, Config{Workdir: work})

	stop := make(chan struct{})
	var swaps atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		d := filepath.Join(work, "d")
		tmp := filepath.Join(work, "d.tmp")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			target := "realdir"
			if i%2 == 1 {
				target = "../outside"
			}
			_ = os.Remove(tmp)
			if err := os.Symlink(target, tmp); err == nil {
				_ = os.Rename(tmp, d)
				swaps.Add(1)
			}
		}
	}()
	var refused, written int
	for i := range 300 {
		err := r.client.PutFile(t.Context(), fmt.Sprintf("d/f%d", i), strings.NewReader("x"), 0)
		if err != nil {
			refused++
		} else {
			written++
		}
		if i%3 == 0 {
			rc, err := r.client.GetFile(t.Context(), "d/f0")
			if err == nil {
				rc.Close()
			}
		}
	}
	close(stop)
	wg.Wait()
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("uploads escaped through the swapped symlink: %d files outside", len(entries))
	}
	t.Logf("%d swaps, %d uploads written inside, %d refused", swaps.Load(), written, refused)
	if swaps.Load() == 0 {
		t.Fatal("the swapper never ran; the test proved nothing")
	}
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
