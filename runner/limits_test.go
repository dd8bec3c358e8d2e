package runner

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sandbox.io/injector/runner/client"
)

// TestSpecialFilesRefused replays GET /files of a FIFO (which used to block
// an OS thread for good in open) and of a socket, also as a directory to
// list: each is refused at once with a 400 that says what the file is.
func TestSpecialFilesRefused(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{})
	if err := syscall.Mkfifo(filepath.Join(r.workdir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(r.workdir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct{ path, want string }{
		{"/files/fifo", "named pipe"},
		{"/files?dir=fifo", "named pipe"},
		{"/files/sock", "socket"},
		{"/files?dir=sock", "socket"},
	} {
		// The bound only keeps a regression from hanging the suite.
		code, body := rawRequestWithin(t, r.url, "GET", tc.path, "", 30*time.Second)
		if code != http.StatusBadRequest || !strings.Contains(body, "is not a regular file or directory") || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %s, want 400 naming a %s", tc.path, code, body, tc.want)
		}
	}
}

// rawRequestWithin is rawRequest with a deadline on the connection.
func rawRequestWithin(t *testing.T, base, method, target, body string, d time.Duration) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(d))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", method, target, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPutOverDirectory replays a PUT onto a directory, which used to
// answer 500: it is a conflict, and the directory stays.
func TestPutOverDirectory(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{})
	for _, d := range []string{"empty", "full/sub"} {
		if err := os.MkdirAll(filepath.Join(r.workdir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"empty", "full"} {
		err := r.client.PutFile(t.Context(), p, strings.NewReader("x"), 0)
		if client.StatusCode(err) != http.StatusConflict || !strings.Contains(err.Error(), "is a directory") {
			t.Errorf("PUT %s: %v, want 409 saying it is a directory", p, err)
		}
		if fi, err := os.Stat(filepath.Join(r.workdir, p)); err != nil || !fi.IsDir() {
			t.Errorf("%s after the PUT: %v, want the directory still there", p, err)
		}
	}
}

// TestRefusedConnectionsClosed replays clients without the token: each
// gets its 401 and then the end of its connection, instead of keeping it
// for the idle timeout; one that announces a body it never sends does not
// hold the connection either.
func TestRefusedConnectionsClosed(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newTestRunner(t, Config{TokenFile: tokenFile})
	for _, req := range []string{
		"GET /status HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\r\n",
		"PUT /files/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc",
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		// Far below the server's idle timeout (minutes), far above what a
		// loaded machine needs to answer and close.
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%q: %v", req, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
			t.Errorf("%q: %d, Connection: close %v; want 401 and close", req, resp.StatusCode, resp.Close)
		}
		// The server closes: the next read ends (EOF or reset), not by our deadline.
		_, err = br.ReadByte()
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%q: read after the 401: %v, want the connection closed by the runner", req, err)
		}
		conn.Close()
	}
}

// TestSlowUploadCut replays an authenticated upload that stops sending: the
// runner gives up after the idle timeout, keeps no partial file, and
// serves the next request.
func TestSlowUploadCut(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{UploadTimeout: time.Minute, UploadIdleTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "PUT /files/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nsome bytes, then nothing")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to a stalled upload: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "--upload-idle-timeout") {
		t.Errorf("stalled upload: %d %s, want 408 naming the flag", resp.StatusCode, b)
	}
	if entries, _ := os.ReadDir(r.workdir); len(entries) != 0 {
		t.Errorf("work directory holds %v after a cut upload, want nothing", entries)
	}
	if err := r.client.PutFile(t.Context(), "fast", strings.NewReader("ok"), 0); err != nil {
		t.Errorf("an upload after the cut one: %v", err)
	}
}
