package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"sandbox.io/injector/runner/api"
	"sandbox.io/injector/runner/client"
)

// testRunner is an in-process runner API on a loopback httptest server.
type testRunner struct {
	srv     *Server
	url     string
	workdir string
	client  *client.Client
}

func newTestRunner(t testing.TB, cfg Config) *testRunner {
	t.Helper()
	if cfg.Workdir == "" {
		cfg.Workdir = filepath.Join(t.TempDir(), "work")
	}
	if cfg.TokenFile == "" && cfg.ClaimVerifier == "" {
		// The tests are loopback clients of a runner without a token,
		// which answers them only when opted in.
		cfg.InsecureLoopback = true
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return &testRunner{srv: s, url: hs.URL, workdir: cfg.Workdir, client: client.New(hs.URL, "", hs.Client())}
}

func TestExecuteJSON(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{})
	if err := os.MkdirAll(filepath.Join(r.workdir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.workdir, "plain"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  api.ExecuteRequest
		want api.ExecuteResult
	}{
		{name: "argv", req: api.ExecuteRequest{Argv: []string{"echo", "hello", "world"}}, want: api.ExecuteResult{Stdout: "hello world\n"}},
		{name: "shell with exit code", req: api.ExecuteRequest{Shell: "echo out; echo err >&2; exit 3"}, want: api.ExecuteResult{ExitCode: 3, Stdout: "out\n", Stderr: "err\n"}},
		{name: "stdin", req: api.ExecuteRequest{Argv: []string{"cat"}, Stdin: "line1\nline2\n"}, want: api.ExecuteResult{Stdout: "line1\nline2\n"}},
		{name: "no stdin is EOF", req: api.ExecuteRequest{Argv: []string{"cat"}}, want: api.ExecuteResult{}},
		{name: "env added", req: api.ExecuteRequest{Shell: `echo "$FOO-$BAR"`, Env: map[string]string{"FOO": "x", "BAR": "y"}}, want: api.ExecuteResult{Stdout: "x-y\n"}},
		{name: "env overrides", req: api.ExecuteRequest{Shell: `env | grep -c '^PATH='`, Env: map[string]string{"PATH": "/usr/bin:/bin"}}, want: api.ExecuteResult{Stdout: "1\n"}},
		{name: "default cwd is workdir", req: api.ExecuteRequest{Argv: []string{"pwd"}}, want: api.ExecuteResult{Stdout: r.workdir + "\n"}},
		{name: "cwd", req: api.ExecuteRequest{Argv: []string{"pwd"}, Cwd: "sub"}, want: api.ExecuteResult{Stdout: filepath.Join(r.workdir, "sub") + "\n"}},
		{name: "killed by signal", req: api.ExecuteRequest{Shell: "kill -KILL $$"}, want: api.ExecuteResult{ExitCode: 137}},
		{name: "not found", req: api.ExecuteRequest{Argv: []string{"no-such-command-here"}}, want: api.ExecuteResult{ExitCode: 127, Error: "no-such-command-here: command not found"}},
		{name: "not executable", req: api.ExecuteRequest{Argv: []string{"./plain"}}, want: api.ExecuteResult{ExitCode: 126, Error: "./plain: permission denied"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.client.Execute(t.Context(), tc.req)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if diff := cmp.Diff(tc.want, *got, cmpopts.IgnoreFields(api.ExecuteResult{}, "DurationMs")); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExecuteRefusals(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{MaxRequestBytes: 1024})
	if err := os.WriteFile(filepath.Join(r.workdir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		body     string
		wantCode int
		wantMsg  string
	}{
		{name: "empty", body: `{}`, wantCode: 400, wantMsg: "one of argv and shell is required"},
		{name: "both", body: `{"argv":["true"],"shell":"true"}`, wantCode: 400, wantMsg: "mutually exclusive"},
		{name: "unknown field", body: `{"argv":["true"],"cmd":"x"}`, wantCode: 400, wantMsg: "unknown field"},
		{name: "not json", body: `argv=true`, wantCode: 400, wantMsg: "decoding"},
		{name: "trailing data", body: `{"argv":["true"]} {}`, wantCode: 400, wantMsg: "trailing"},
		{name: "negative timeout", body: `{"argv":["true"],"timeout_ms":-1}`, wantCode: 400, wantMsg: "negative"},
		{name: "cwd escapes", body: `{"argv":["true"],"cwd":"../.."}`, wantCode: 400, wantMsg: `".." is not allowed`},
		{name: "cwd absolute", body: `{"argv":["true"],"cwd":"/etc"}`, wantCode: 400, wantMsg: "absolute"},
		{name: "cwd missing", body: `{"argv":["true"],"cwd":"nope"}`, wantCode: 400, wantMsg: "no such file"},
		{name: "cwd is a file", body: `{"argv":["true"],"cwd":"file"}`, wantCode: 400, wantMsg: "not a directory"},
		{name: "env key with =", body: `{"argv":["true"],"env":{"A=B":"c"}}`, wantCode: 400, wantMsg: "not a valid variable name"},
		{name: "body over the limit", body: `{"argv":["true"],"stdin":"` + strings.Repeat("x", 2048) + `"}`, wantCode: 413, wantMsg: "larger than the limit of 1024 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := http.Post(r.url+"/execute", api.ContentTypeJSON, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e api.Error
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("decoding error body: %v", err)
			}
			if resp.StatusCode != tc.wantCode || !strings.Contains(e.Error, tc.wantMsg) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, e.Error, tc.wantCode, tc.wantMsg)
			}
		})
	}
}

func TestExecuteShellMissing(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{})
	r.srv.exec.shell = filepath.Join(t.TempDir(), "no-sh")
	_, err := r.client.Execute(t.Context(), api.ExecuteRequest{Shell: "true"})
	if code := client.StatusCode(err); code != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "does not have") {
		t.Fatalf("got %v (status %d), want 422 saying the image has no /bin/sh", err, code)
	}
	// argv still works without a shell.
	res, err := r.client.Execute(t.Context(), api.ExecuteRequest{Argv: []string{"true"}})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("argv without shell: %v %+v", err, res)
	}
}

func TestExecuteOutputCap(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{MaxOutputBytes: 1000})
	// 5 MB on stdout, a little on stderr: stdout is cut, the command still
	// runs to its end (it is drained, not blocked), stderr is whole.
	res, err := r.client.Execute(t.Context(), api.ExecuteRequest{Shell: "head -c 5000000 /dev/zero | tr '\\0' a; echo done >&2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stdout) != 1000 || strings.Trim(res.Stdout, "a") != "" || !res.Truncated || res.Stderr != "done\n" || res.ExitCode != 0 {
		t.Fatalf("got stdout of %d bytes, truncated=%v, stderr=%q, exit %d; want 1000 bytes of a, truncated, done, 0",
			len(res.Stdout), res.Truncated, res.Stderr, res.ExitCode)
	}
	res, err = r.client.Execute(t.Context(), api.ExecuteRequest{Shell: "head -c 1000 /dev/zero"})
	if err != nil || res.Truncated || len(res.Stdout) != 1000 {
		t.Fatalf("output exactly at the cap: %v truncated=%v len=%d", err, res.Truncated, len(res.Stdout))
	}
}

// processGone waits until pid has exited (gone, or a zombie whose parent
// has not reaped it yet: it runs no more either way).
func processGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err == nil {
			if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
				return
			}
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not synchronising
	}
	t.Fatalf("process %d still runs", pid)
}

func TestExecuteTimeoutKillsGroup(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{})
	// The grandchild is a background sleep holding stdout: the timeout must
	// kill it too, or the request would hang until it ends.
	// The timeout leaves the shell ample time to print the pid even on a
	// loaded machine; it still ends the request long before the sleeps would.
	res, err := r.client.Execute(t.Context(), api.ExecuteRequest{Shell: "sleep 300 & echo $!; sleep 300", TimeoutMs: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.ExitCode != 137 {
		t.Fatalf("got timed_out=%v exit=%d, want true, 137", res.TimedOut, res.ExitCode)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(res.Stdout))
	if err != nil {
		t.Fatalf("grandchild pid %q: %v", res.Stdout, err)
	}
	processGone(t, pid)
}

// TestExecuteBackgroundProcessDoesNotHang starts a background process that
// keeps the output pipes open after the command exited: the answer comes
// anyway (output read until a short drain deadline), and the background
// process keeps running, as a started server should.
func TestExecuteBackgroundProcessDoesNotHang(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{})
	res, err := r.client.Execute(t.Context(), api.ExecuteRequest{Shell: "sleep 300 & echo $!"})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(res.Stdout))
	if err != nil || res.ExitCode != 0 || res.TimedOut {
		t.Fatalf("result %+v: %v", res, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err != nil || bytes.Contains(st, []byte(") Z")) {
		t.Errorf("the background process %d does not run any more: %v", pid, err)
	}
}

func TestExecuteStreamNDJSON(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{})
	body := `{"shell":"echo one; echo err1 >&2; printf 'two\\n'; echo err2 >&2; exit 4"}`
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, r.url+"/execute", strings.NewReader(body))
	req.Header.Set("Accept", api.ContentTypeNDJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != api.ContentTypeNDJSON {
		t.Fatalf("content type %q", ct)
	}
	var out, errOut strings.Builder
	var final *api.ExecuteResult
	sc := bufio.NewScanner(resp.Body)
	lines := 0
	for sc.Scan() {
		lines++
		if final != nil {
			t.Fatalf("line after the result: %s", sc.Text())
		}
		var ev api.StreamEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		switch ev.Stream {
		case api.StreamStdout:
			out.WriteString(ev.Data)
		case api.StreamStderr:
			errOut.WriteString(ev.Data)
		case "":
			final = ev.ExecuteResult
		default:
			t.Fatalf("unknown stream %q", ev.Stream)
		}
	}
	if final == nil {
		t.Fatal("no result line")
	}
	if out.String() != "one\ntwo\n" || errOut.String() != "err1\nerr2\n" || final.ExitCode != 4 || final.Stdout != "" {
		t.Fatalf("stdout %q stderr %q result %+v", out.String(), errOut.String(), final)
	}
}

func TestExecuteStreamArrivesBeforeExitAndDisconnectKills(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	body := `{"shell":"sleep 300 & echo $!; echo $$; wait"}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.url+"/execute", strings.NewReader(body))
	req.Header.Set("Accept", api.ContentTypeNDJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Both pids arrive while the command still runs: streamed, not buffered.
	var pids []int
	sc := bufio.NewScanner(resp.Body)
	for len(pids) < 2 && sc.Scan() {
		var ev api.StreamEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Stream != api.StreamStdout {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		for _, f := range strings.Fields(ev.Data) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			pids = append(pids, pid)
		}
	}
	if len(pids) != 2 {
		t.Fatalf("got pids %v", pids)
	}
	cancel() // the client goes away
	for _, pid := range pids {
		processGone(t, pid)
	}
	// The slot is given back once the command is dead.
	deadline := time.Now().Add(30 * time.Second)
	for len(r.srv.execSlots) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("execution slot still held after the client left")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestExecuteConcurrencyLimit(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{MaxConcurrent: 1})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := r.client.ExecuteStream(ctx, api.ExecuteRequest{Shell: "echo started; exec sleep 300"}, writerFunc(func(p []byte) (int, error) {
			select {
			case <-started:
			default:
				close(started)
			}
			return len(p), nil
		}), nil)
		done <- err
	}()
	select {
	case <-started:
	case <-t.Context().Done():
		t.Fatal("first execution did not start")
	}
	_, err := r.client.Execute(t.Context(), api.ExecuteRequest{Argv: []string{"true"}})
	if client.StatusCode(err) != http.StatusTooManyRequests || !strings.Contains(err.Error(), "limit 1") {
		t.Fatalf("second execution: got %v, want 429", err)
	}
	cancel()
	<-done
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestStatusAndProbes(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{Version: "v1.2.3"})
	st, err := r.client.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&api.Status{Mode: "server", Version: "v1.2.3", Healthy: true}, st); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if err := r.client.Healthz(t.Context()); err != nil {
		t.Errorf("healthz: %v", err)
	}
	for _, p := range []string{"/readyz", "/metrics"} {
		resp, err := http.Get(r.url + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", p, resp.StatusCode, b)
		}
		if p == "/metrics" && !bytes.Contains(b, []byte(`sandbox_runner_build_info{version="v1.2.3",mode="server"} 1`)) {
			t.Errorf("metrics lack build info:\n%s", b)
		}
	}
}

func TestMetricsCountRequests(t *testing.T) {
	t.Parallel()
	r := newTestRunner(t, Config{})
	for range 3 {
		if _, err := r.client.Execute(t.Context(), api.ExecuteRequest{Argv: []string{"true"}}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(r.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`sandbox_runner_http_requests_total{route="/execute",code="200"} 3`,
		`sandbox_runner_execution_duration_seconds_count 3`,
		`sandbox_runner_execution_duration_seconds_bucket{le="+Inf"} 3`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
}
