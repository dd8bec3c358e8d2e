package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"sandbox.io/injector/runner/api"
)

// ErrNoShell is returned for a shell request in an image without /bin/sh.
var ErrNoShell = errors.New("shell requests need /bin/sh, which this image does not have; send argv instead")

// shellPath is the interpreter of api.ExecuteRequest.Shell.
const shellPath = "/bin/sh"

// drainAfterExit bounds how long output is still read after the command
// exited, for when a background process it left behind holds the pipes.
const drainAfterExit = 200 * time.Millisecond

// sink receives the output of one execution as it arrives. Calls come from
// two goroutines (one per stream) and must be safe together.
type sink interface {
	write(stream string, p []byte)
}

// capture is the sink of a JSON execution: it keeps up to limit bytes of
// each stream and drops the rest, remembering that it did.
type capture struct {
	limit     int
	mu        sync.Mutex
	out, err  []byte
	truncated bool
}

func (c *capture) write(stream string, p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := &c.out
	if stream == api.StreamStderr {
		buf = &c.err
	}
	room := c.limit - len(*buf)
	if len(p) > room {
		p = p[:max(room, 0)]
		c.truncated = true
	}
	*buf = append(*buf, p...)
}

// execution is what the executor needs beyond the request.
type execution struct {
	req  *api.ExecuteRequest
	sink sink
}

// executor runs /execute commands in the work directory.
type executor struct {
	shell   string // path of the shell interpreter
	workdir string
	root    *os.Root
	env     atomic.Pointer[[]string] // base environment; a claim replaces it
	procs   *procTable
	devNull *os.File // shared stdin of commands without input; nil if absent
}

// prepare resolves the argv, working directory and environment of a
// request. An error here is the caller's fault (HTTP 4xx), except that a
// command that cannot be found is reported in the result.
func (e *executor) prepare(req *api.ExecuteRequest) (argv []string, dir string, env []string, err error) {
	argv = req.Argv
	if req.Shell != "" {
		if _, err := os.Stat(e.shell); err != nil {
			return nil, "", nil, ErrNoShell
		}
		argv = []string{e.shell, "-c", req.Shell}
	}
	dir = e.workdir
	if req.Cwd != "" {
		clean, err := api.CleanPath(req.Cwd)
		if err != nil {
			return nil, "", nil, fmt.Errorf("cwd: %w", err)
		}
		fi, err := e.root.Stat(clean)
		if err != nil {
			return nil, "", nil, fmt.Errorf("cwd %q: %w", req.Cwd, err)
		}
		if !fi.IsDir() {
			return nil, "", nil, fmt.Errorf("cwd %q is not a directory", req.Cwd)
		}
		dir = filepath.Join(e.workdir, clean)
	}
	env = *e.env.Load()
	if len(req.Env) > 0 {
		env = mergeEnv(env, req.Env)
	}
	return argv, dir, env, nil
}

// mergeEnv returns base with the variables of add set, each key once.
func mergeEnv(base []string, add map[string]string) []string {
	out := make([]string, 0, len(base)+len(add))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := add[k]; ok {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range add {
		out = append(out, k+"="+v)
	}
	return out
}

// lookPath finds name in the PATH of env, as execvp would; a name with a
// slash is taken as it is (relative names against dir).
func lookPath(name, dir string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return p, checkExecutable(p)
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			pathEnv = v
			break
		}
	}
	var firstErr error
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		p := filepath.Join(d, name)
		err := checkExecutable(p)
		if err == nil {
			return p, nil
		}
		if firstErr == nil && !errors.Is(err, fs.ErrNotExist) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", fs.ErrNotExist
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fs.ErrPermission
	}
	return nil
}

// run executes one prepared request. It returns when the command exited
// (or was killed: timeout, or ctx done because the client went away) and its
// output has been delivered to the sink. The whole process group is killed
// on timeout and on cancellation.
func (e *executor) run(ctx context.Context, x execution, argv []string, dir string, env []string) api.ExecuteResult {
	start := time.Now()
	var res api.ExecuteResult
	bin, err := lookPath(argv[0], dir, env)
	if err != nil {
		return notFound(argv[0], err)
	}
	pipes, err := e.openStdio(x.req.Stdin != "")
	if err != nil {
		return startError(res, argv, err)
	}
	p, err := e.procs.start(bin, argv, &os.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []*os.File{pipes.stdin, pipes.outW, pipes.errW},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	pipes.closeChildEnds()
	if err != nil {
		pipes.abandon()
		return startError(res, argv, err)
	}
	pid := p.Pid
	pipes.feedStdin(x.req.Stdin)
	readers := pipes.pumpTo(x.sink)
	res.TimedOut, res.ExitCode = e.wait(ctx, p, x.req.TimeoutMs)
	res.DurationMs = float64(time.Since(start).Microseconds()) / 1000
	if res.TimedOut || ctx.Err() != nil {
		// Anything the group left running is killed with it (the command
		// may have exited before the kill reached its children).
		_ = killGroup(pid, syscall.SIGKILL)
	}
	pipes.drain(readers)
	return res
}

// notFound is the result of a command lookPath could not resolve.
func notFound(name string, err error) api.ExecuteResult {
	res := api.ExecuteResult{ExitCode: 126}
	if errors.Is(err, fs.ErrNotExist) {
		res.ExitCode = 127
		res.Error = fmt.Sprintf("%s: command not found", name)
	} else {
		res.Error = fmt.Sprintf("%s: %v", name, err)
	}
	return res
}

// stdio are the pipes between the runner and one command.
type stdio struct {
	outR, outW, errR, errW *os.File
	// stdin is the command's: the shared /dev/null, or the read end of a
	// pipe whose write end, stdinW, the runner feeds the request's input.
	stdin, stdinW *os.File
}

// openStdio opens the command's output pipes and, when it has input (or
// there is no /dev/null to give it), its input pipe.
func (e *executor) openStdio(withInput bool) (*stdio, error) {
	// Only the runner's read ends join the poller; the child's ends are
	// plain descriptors (fewer syscalls per execution).
	outR, outW, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("creating stdout pipe: %w", err)
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll(outR, outW)
		return nil, fmt.Errorf("creating stderr pipe: %w", err)
	}
	pipes := &stdio{outR: outR, outW: outW, errR: errR, errW: errW, stdin: e.devNull}
	if withInput || pipes.stdin == nil {
		var fds [2]int
		if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
			closeAll(outR, outW, errR, errW)
			return nil, fmt.Errorf("creating stdin pipe: %w", err)
		}
		pipes.stdin, pipes.stdinW = os.NewFile(uintptr(fds[0]), "stdin"), os.NewFile(uintptr(fds[1]), "stdin")
	}
	return pipes, nil
}

// closeChildEnds closes the runner's copies of the command's ends, once
// the command has them (or failed to start).
func (st *stdio) closeChildEnds() {
	closeAll(st.outW, st.errW)
	if st.stdinW != nil { // stdin is the pipe's, not the shared /dev/null
		st.stdin.Close()
	}
}

// abandon closes the runner's ends of a command that did not start.
func (st *stdio) abandon() {
	closeAll(st.outR, st.errR)
	if st.stdinW != nil {
		st.stdinW.Close()
	}
}

// feedStdin writes the request's input to the command, in the background.
func (st *stdio) feedStdin(input string) {
	if st.stdinW == nil {
		return
	}
	go func() {
		// A command that does not read its input gets EPIPE here; that
		// is its choice, not an error of the request.
		_, _ = st.stdinW.WriteString(input)
		st.stdinW.Close()
	}()
}

// pumpTo copies both output pipes to s until EOF (or drain's deadline).
func (st *stdio) pumpTo(s sink) *sync.WaitGroup {
	var readers sync.WaitGroup
	readers.Add(2)
	go pump(&readers, st.outR, api.StreamStdout, s)
	go pump(&readers, st.errR, api.StreamStderr, s)
	return &readers
}

// wait waits for the command to exit, killing its whole group on timeout
// (timeoutMs, 0 for none) or when ctx is done. timedOut says the timeout
// fired.
func (e *executor) wait(ctx context.Context, p *os.Process, timeoutMs int64) (timedOut bool, exitStatus int) {
	pid := p.Pid
	// A timeout or the client going away kills the whole group; this
	// goroutine meanwhile waits for the command itself.
	stopOnCancel := context.AfterFunc(ctx, func() { _ = killGroup(pid, syscall.SIGKILL) })
	var timer *time.Timer
	if timeoutMs > 0 {
		timer = time.AfterFunc(time.Duration(timeoutMs)*time.Millisecond, func() { _ = killGroup(pid, syscall.SIGKILL) })
	}
	ws := e.procs.wait(p)
	stopOnCancel()
	timedOut = timer != nil && !timer.Stop()
	return timedOut, exitCode(ws)
}

// drain waits for the readers to deliver the output the command left in
// the pipes, then closes them.
func (st *stdio) drain(readers *sync.WaitGroup) {
	// EOF comes at once unless a background process still holds the pipes,
	// which then loses its output.
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainAfterExit):
		deadline := time.Now()
		_ = st.outR.SetReadDeadline(deadline)
		_ = st.errR.SetReadDeadline(deadline)
		<-done
	}
	closeAll(st.outR, st.errR)
}

// pump copies one pipe to the sink in chunks that end on UTF-8 boundaries
// (so each JSON string carries whole characters when the output is text).
func pump(wg *sync.WaitGroup, r *os.File, stream string, s sink) {
	defer wg.Done()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	held := 0
	for {
		n, err := r.Read(buf[held:])
		n += held
		held = 0
		if n > 0 {
			cut := utf8Cut(buf[:n])
			if err == nil && cut < n && cut > 0 {
				s.write(stream, buf[:cut])
				held = copy(buf, buf[cut:n])
			} else {
				s.write(stream, buf[:n])
			}
		}
		if err != nil {
			return
		}
	}
}

// utf8Cut returns the length of p without a trailing incomplete UTF-8
// sequence (at most 3 bytes are held back).
func utf8Cut(p []byte) int {
	for i := 1; i <= 3 && i <= len(p); i++ {
		c := p[len(p)-i]
		if c < 0x80 {
			return len(p)
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(p[len(p)-i:]) {
				return len(p) - i
			}
			return len(p)
		}
	}
	return len(p)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// pipe returns a pipe whose read end is non-blocking and served by the
// runtime poller (so it can be read with deadlines), and whose write end is
// a plain descriptor for the child.
func pipe() (r, w *os.File, err error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "pipe"), os.NewFile(uintptr(fds[1]), "pipe"), nil
}

func startError(res api.ExecuteResult, argv []string, err error) api.ExecuteResult {
	res.ExitCode = 126
	if errors.Is(err, fs.ErrNotExist) {
		res.ExitCode = 127
	}
	res.Error = fmt.Sprintf("starting %s: %v", argv[0], err)
	return res
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
