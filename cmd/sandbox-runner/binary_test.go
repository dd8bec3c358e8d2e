package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sandbox.io/injector/runner/api"
	"sandbox.io/injector/runner/client"
)

// runnerBin is the real sandbox-runner, built once for this package.
var runnerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sandbox-runner-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable by everyone: one test installs as an unprivileged user.
	_ = os.Chmod(dir, 0o755)
	runnerBin = filepath.Join(dir, "sandbox-runner")
	build := exec.Command("go", "build", "-trimpath", "-tags", buildTags, "-o", runnerBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building sandbox-runner: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a started runner binary.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	stdout chan string // lines of the supervised command's stdout
	done   chan struct{}
	err    error // of Wait, once done is closed

	mu     sync.Mutex
	stderr bytes.Buffer
}

// startRunner starts the binary with args and, unless noAPI, waits for its
// "serving" log line to learn the address.
func startRunner(t testing.TB, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(runnerBin, args...))
}

func startCmd(t testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	return startCmdLog(t, cmd, true)
}

// startCmdLog starts cmd; keepLog false drops the runner's log after its
// "serving" line (benchmarks: the runner still writes every line, but the
// test process spends no time keeping them).
func startCmdLog(t testing.TB, cmd *exec.Cmd, keepLog bool) *proc {
	t.Helper()
	p := &proc{cmd: cmd, stdout: make(chan string, 100), done: make(chan struct{})}
	// The tests reach the runner from loopback without a token; a runner
	// without one is closed unless opted in. A test's own setting, later
	// in Env, wins.
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append([]string{"SANDBOX_INSECURE_LOOPBACK=true"}, cmd.Env...)
	if cmd.Dir == "" {
		cmd.Dir = t.TempDir()
	}
	outR, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			p.stdout <- sc.Text()
		}
		close(p.stdout)
	}()
	go func() {
		defer readers.Done()
		found := addrc
		sc := bufio.NewScanner(errR)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			if p.stderr.Len() < 1<<20 { // benchmarks log a lot
				p.stderr.Write(line)
				p.stderr.WriteByte('\n')
			}
			p.mu.Unlock()
			if found == nil || !bytes.Contains(line, []byte(`"msg":"serving"`)) {
				continue
			}
			var rec struct{ Addr string }
			if json.Unmarshal(line, &rec) == nil {
				found <- rec.Addr
				found = nil
				if !keepLog {
					_, _ = io.Copy(io.Discard, errR)
					return
				}
			}
		}
	}()
	go func() {
		readers.Wait()
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			killRunner(cmd.Process)
			<-p.done
		}
		if t.Failed() {
			t.Logf("runner stderr:\n%s", p.log())
		}
	})
	select {
	case p.addr = <-addrc:
	case <-p.done:
		t.Fatalf("runner exited before serving: %v\n%s", p.err, p.log())
	case <-time.After(60 * time.Second):
		t.Fatalf("runner did not log serving\n%s", p.log())
	}
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *proc) client() *client.Client {
	return client.New("http://"+p.addr, "", nil)
}

// waitLine waits for a stdout line of the supervised command.
func (p *proc) waitLine(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-p.stdout:
			if !ok {
				t.Fatalf("stdout closed before %q\n%s", want, p.log())
			}
			if line == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %q on stdout\n%s", want, p.log())
		}
	}
}

// exitCode waits for the runner to exit and returns its exit code.
func (p *proc) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("runner did not exit\n%s", p.log())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("waiting for the runner: %v", p.err)
	}
	return 0
}

func TestVersion(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(runnerBin, "version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "dev" {
		t.Fatalf("version: %q %v", out, err)
	}
}

func TestWrapExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cmd  []string
		want int
	}{
		{"success", []string{"true"}, 0},
		{"exit code", []string{"sh", "-c", "exit 7"}, 7},
		{"killed by SIGKILL", []string{"sh", "-c", "kill -KILL $$"}, 137},
		{"killed by SIGSEGV", []string{"sh", "-c", "kill -SEGV $$"}, 139},
		{"not found", []string{"no-such-command-here"}, 127},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startRunner(t, append([]string{"run", "--mode=wrap", "--listen=127.0.0.1:0", "--"}, tc.cmd...)...)
			if got := p.exitCode(t); got != tc.want {
				t.Errorf("exit code %d, want %d", got, tc.want)
			}
		})
	}
}

func TestSignalForwarding(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2} {
		name := strings.TrimPrefix(sigName(sig), "SIG")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			script := fmt.Sprintf(`trap 'echo got %s; exit 0' %s; echo ready; while :; do sleep 0.1; done`, name, name)
			p := startRunner(t, "run", "--mode=wrap", "--listen=127.0.0.1:0", "--", "sh", "-c", script)
			p.waitLine(t, "ready")
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			p.waitLine(t, "got "+name)
			if got := p.exitCode(t); got != 0 {
				t.Errorf("exit code %d, want the command's 0", got)
			}
		})
	}
}

func sigName(s syscall.Signal) string {
	return map[syscall.Signal]string{
		syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGHUP: "SIGHUP",
		syscall.SIGQUIT: "SIGQUIT", syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2",
	}[s]
}

// processGone waits until pid no longer runs (absent or a zombie).
func processGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := procState(pid)
		if errors.Is(err, os.ErrNotExist) || st == 'Z' || st == 'X' {
			return
		}
		time.Sleep(10 * time.Millisecond) // polling a condition
	}
	t.Fatalf("process %d still runs", pid)
}

func procState(pid int) (byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	return b[i+2], nil
}

func TestGracePeriodKillsGroup(t *testing.T) {
	t.Parallel()
	// The command and its background child ignore SIGTERM.
	script := `trap '' TERM; sleep 300 & echo $!; echo ready; wait`
	p := startRunner(t, "run", "--mode=wrap", "--grace-period=300ms", "--listen=127.0.0.1:0", "--", "sh", "-c", script)
	var bg int
	select {
	case line := <-p.stdout:
		var err error
		if bg, err = strconv.Atoi(line); err != nil {
			t.Fatalf("background pid %q: %v", line, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no background pid")
	}
	p.waitLine(t, "ready")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := p.exitCode(t); got != 137 {
		t.Errorf("exit code %d, want 137 (killed after the grace period)", got)
	}
	processGone(t, bg)
	if !strings.Contains(p.log(), "grace period over") {
		t.Errorf("log does not say the grace period ended:\n%s", p.log())
	}
}

func TestServerModeKeepsServing(t *testing.T) {
	t.Parallel()
	p := startRunner(t, "run", "--mode=server", "--listen=127.0.0.1:0", "--", "sh", "-c", "echo bye; exit 5")
	p.waitLine(t, "bye")
	c := p.client()
	var st *api.Status
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		if st, err = c.Status(t.Context()); err != nil {
			t.Fatal(err)
		}
		if st.Child != nil && !st.Child.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child still reported running: %+v", st.Child)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.Mode != "server" || st.Child.ExitCode == nil || *st.Child.ExitCode != 5 || st.Child.PID == 0 || st.Child.StartedAt.IsZero() {
		t.Fatalf("status %+v child %+v, want server mode and exit code 5", st, st.Child)
	}
	res, err := c.Execute(t.Context(), api.ExecuteRequest{Argv: []string{"echo", "still here"}})
	if err != nil || res.Stdout != "still here\n" {
		t.Fatalf("execute after the command exited: %v %+v", err, res)
	}
	if resp, err := http.Get("http://" + p.addr + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz in server mode after exit: %v %v", err, resp)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if got := p.exitCode(t); got != 0 {
		t.Errorf("server mode exit code %d, want 0", got)
	}
}

func TestNoTokenClosesTheAPI(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(runnerBin, "run", "--listen=127.0.0.1:0", "--token-file=missing-token")
	cmd.Env = append(os.Environ(), "SANDBOX_INSECURE_LOOPBACK=false")
	p := startCmd(t, cmd)
	if !strings.Contains(p.log(), `"auth":"closed"`) {
		t.Errorf("the runner does not say its API is closed:\n%s", p.log())
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/status": 403, "/files": 403, "/metrics": 403} {
		resp, err := http.Get("http://" + p.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s from loopback without a token: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err := http.Post("http://"+p.addr+"/execute", "application/json", strings.NewReader(`{"argv":["true"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("POST /execute from loopback without a token: %d, want 403", resp.StatusCode)
	}
}

func TestServerModeAPIOnly(t *testing.T) {
	t.Parallel()
	p := startRunner(t, "run", "--listen=127.0.0.1:0", "--token-file=missing-token")
	st, err := p.client().Status(t.Context())
	if err != nil || st.Child != nil {
		t.Fatalf("status %+v %v, want no child", st, err)
	}
	if !strings.Contains(p.log(), `"auth":"loopbackOnly"`) || !strings.Contains(p.log(), "no API token configured") {
		t.Errorf("the runner does not say it serves loopback only:\n%s", p.log())
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT) // no child: SIGINT stops it
	if got := p.exitCode(t); got != 0 {
		t.Errorf("exit code %d, want 0", got)
	}
}

func TestWrapReadyzAndToken(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(runnerBin, "run", "--listen=127.0.0.1:0", "--", "sh", "-c", "echo ready; exec sleep 300")
	cmd.Env = append(os.Environ(), "SANDBOX_TOKEN_FILE="+tokenFile, "SANDBOX_MODE=wrap") // like the webhook
	p := startCmd(t, cmd)
	p.waitLine(t, "ready")
	resp, err := http.Get("http://" + p.addr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz while the command runs: %v %v", err, resp)
	}
	if _, err := p.client().Status(t.Context()); client.StatusCode(err) != 401 {
		t.Errorf("status without the token: %v, want 401", err)
	}
	st, err := client.New("http://"+p.addr, "tok", nil).Status(t.Context())
	if err != nil || st.Child == nil || !st.Child.Running {
		t.Errorf("status with the token: %+v %v", st, err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if got := p.exitCode(t); got != 143 {
		t.Errorf("exit code %d, want 143 (sleep killed by the forwarded SIGTERM)", got)
	}
}

// killRunner kills a runner and the process groups of its children: its
// command runs in a group of its own, which the runner's death would leave
// running (a `sleep 300` for five minutes).
func killRunner(p *os.Process) {
	for _, c := range children(p.Pid) {
		_ = syscall.Kill(-c, syscall.SIGKILL)
	}
	_ = p.Kill()
}

// children lists the child pids of pid (all threads).
func children(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// checkReaping makes five orphans that exit at once and waits until the
// runner (host pid runnerPID) reaped them all.
func checkReaping(t *testing.T, p *proc, runnerPID int) {
	t.Helper()
	c := p.client()
	res, err := c.Execute(t.Context(), api.ExecuteRequest{Shell: "for i in 1 2 3 4 5; do (true &); done"})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("making orphans: %v %+v", err, res)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := c.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		zombies := 0
		for _, c := range children(runnerPID) {
			if s, _ := procState(c); s == 'Z' {
				zombies++
			}
		}
		if st.OrphansReaped >= 5 && zombies == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphans reaped %d (want 5), zombies left %d", st.OrphansReaped, zombies)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReapsOrphansAsSubreaper(t *testing.T) {
	t.Parallel()
	p := startRunner(t, "run", "--listen=127.0.0.1:0")
	checkReaping(t, p, p.cmd.Process.Pid)
}

func TestReapsZombiesAsPID1(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) is not installed")
	}
	if out, err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("the kernel refuses a new PID namespace here: %v %s", err, out)
	}
	p := startCmd(t, exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
		runnerBin, "run", "--listen=127.0.0.1:0"))
	var log struct{ PID int }
	for _, line := range strings.Split(p.log(), "\n") {
		if strings.Contains(line, `"msg":"serving"`) {
			_ = json.Unmarshal([]byte(line), &log)
		}
	}
	if log.PID != 1 {
		t.Fatalf("the runner's pid in its namespace is %d, want 1", log.PID)
	}
	kids := children(p.cmd.Process.Pid)
	if len(kids) != 1 {
		t.Fatalf("unshare has children %v, want the runner", kids)
	}
	checkReaping(t, p, kids[0])
	if err := syscall.Kill(kids[0], syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := p.exitCode(t); got != 0 {
		t.Errorf("exit code %d, want 0", got)
	}
}

func TestInstall(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile(runnerBin)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "a", "b", "sandbox-runner")
	for i := range 2 { // twice: the second replaces the first
		if out, err := exec.Command(runnerBin, "install", dest).CombinedOutput(); err != nil {
			t.Fatalf("install #%d: %v %s", i+1, err, out)
		}
	}
	got, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("installed copy differs from the binary (%d vs %d bytes, %v)", len(got), len(want), err)
	}
	fi, _ := os.Stat(dest)
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Dir(dest)); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if out, err := exec.Command(dest, "version").Output(); err != nil || strings.TrimSpace(string(out)) != "dev" {
		t.Errorf("installed copy: %q %v", out, err)
	}
}

func TestInstallAsNonRoot(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	dir, err := os.MkdirTemp("", "install-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(runnerBin, "install", filepath.Join(dir, "bin", "sandbox-runner"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install as uid 65532: %v %s", err, out)
	}
	fi, err := os.Stat(filepath.Join(dir, "bin", "sandbox-runner"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("installed file: %v %v", fi, err)
	}
}

// TestInstallFailures mounts a read-only and a full tmpfs in a private mount
// namespace and checks install fails clearly on each.
func TestInstallFailures(t *testing.T) {
	t.Parallel()
	if out, err := exec.Command("unshare", "--mount", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a mount namespace here: %v %s", err, out)
	}
	tests := []struct {
		name, mountOpts, wantMsg string
	}{
		{"read-only", "ro", "read-only file system"},
		{"full", "size=64k", "no space left on device"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			script := `mount -t tmpfs -o "$1" tmpfs "$2" || exit 99; exec "$3" install "$2/sub/sandbox-runner"`
			cmd := exec.Command("unshare", "--mount", "--propagation=private", "sh", "-c", script, "sh", tc.mountOpts, dir, runnerBin)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == 99 {
				t.Skipf("cannot mount a tmpfs here: %s", out)
			}
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("install: %v %s, want exit code 1", err, out)
			}
			if !strings.Contains(string(out), tc.wantMsg) || !strings.Contains(string(out), "installing to") {
				t.Errorf("message %q does not say %q", out, tc.wantMsg)
			}
		})
	}
}

// TestDepcheck fails when the runner links a Kubernetes library or anything
// outside the standard library and this module (ggcr's depcheck idea).
func TestDepcheck(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"k8s.io/", "sigs.k8s.io/"} {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("sandbox-runner imports %s (forbidden prefix %s)", dep, bad)
			}
		}
		if !strings.HasPrefix(dep, "sandbox.io/injector/") {
			t.Errorf("sandbox-runner imports %s, which is not the standard library", dep)
		}
		if dep != "sandbox.io/injector/cmd/sandbox-runner" && !strings.HasPrefix(dep, "sandbox.io/injector/runner") &&
			dep != "sandbox.io/injector/internal/version" && dep != "sandbox.io/injector/internal/envflag" {
			t.Errorf("sandbox-runner imports %s; it may only use runner/..., internal/version and internal/envflag", dep)
		}
	}
}

// BuildTags are the tags of the shipped runner (RUNNER_TAGS in
// make/30-runner.mk): HTTP/2 is left out of net/http (the API is HTTP/1.1)
// and crypto uses its portable code instead of assembly (the runner serves
// plain HTTP; TLS only for an HTTPS liveness probe), which keeps the binary
// under 6 MiB.
const buildTags = "nethttpomithttp2,purego"

// maxSize is the design's limit for the stripped static binary.
const maxSize = 6 << 20

func TestStaticAndSmall(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "sandbox-runner")
	build := exec.Command("go", "build", "-trimpath", "-tags", buildTags, "-ldflags", "-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary has an ELF interpreter: it is not static")
		}
		if p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a dynamic section")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stripped static binary: %d bytes (%.2f MiB)", fi.Size(), float64(fi.Size())/(1<<20))
	if fi.Size() >= maxSize {
		t.Errorf("binary is %.2f MiB, the limit is 6 MiB", float64(fi.Size())/(1<<20))
	}
}
