package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"sandbox.io/injector/runner/api"
)

// forwarded are the signals passed on to the supervised command's process
// group.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// supervisor runs the supervised command, restarts it as its restart
// policy says (with the kubelet's back-off), runs its liveness probe and
// keeps the one healthy bit.
//
// mu is held across a start (the fork and recording the pid), and signal
// forwarding takes it too: a signal that arrives while the child starts
// waits for it and then reaches it, instead of finding no child (which
// would drop it, or stop the runner on SIGINT).
type supervisor struct {
	argv   []string
	policy string
	grace  time.Duration
	log    *slog.Logger
	procs  *procTable
	clock  clock
	prober *prober // nil without a liveness probe

	mu       sync.Mutex
	status   api.ChildStatus
	probeOK  bool              // the last liveness probe of this child passed (or none ran yet)
	liveKill bool              // this child is being killed by its liveness probe
	stopping bool              // the runner stops: no more starts
	byReason map[string]uint64 // restarts by the reason of the exit before them
	stopc    chan struct{}     // closed by stop
	done     chan struct{}     // closed once no child runs and none will start
}

// childExit is how one run of the child ended.
type childExit struct {
	ws      syscall.WaitStatus
	code    int // set instead of ws when the command could not start
	noStart bool
}

func newSupervisor(s *Server, argv []string) *supervisor {
	cfg := &s.cfg
	sup := &supervisor{
		argv: slices.Clone(argv), policy: cfg.RestartPolicy, grace: cfg.GracePeriod,
		log: s.log, procs: s.procs, clock: cfg.clock,
		byReason: map[string]uint64{},
		stopc:    make(chan struct{}),
		done:     make(chan struct{}),
		status:   api.ChildStatus{Argv: slices.Clone(argv), RestartPolicy: cfg.RestartPolicy},
	}
	if cfg.Mode == api.ModeWrap {
		sup.policy = api.RestartNever
		sup.status.RestartPolicy = api.RestartNever
	}
	if cfg.LivenessProbe != nil {
		cwd, _ := os.Getwd()
		sup.prober = &prober{probe: cfg.LivenessProbe, exec: s.exec, dir: cwd, env: os.Environ()}
	}
	return sup
}

func (s *supervisor) snapshot() *api.ChildStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.status
	c.Argv = slices.Clone(c.Argv)
	return &c
}

func (s *supervisor) exitCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.ExitCode == nil {
		return 0
	}
	return *s.status.ExitCode
}

// healthy is false when the restart policy expects the child to run and it
// does not, or its last liveness probe failed.
func (s *supervisor) healthy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.expectedLocked() {
		return true
	}
	return s.status.Running && s.probeOK
}

// expectedLocked reports whether the child should be running: always under
// Always, until it succeeded under OnFailure, until its first exit under
// Never; never once the runner stops.
func (s *supervisor) expectedLocked() bool {
	if s.stopping {
		return false
	}
	last := s.status.LastExit
	switch s.policy {
	case api.RestartAlways:
		return true
	case api.RestartOnFailure:
		return last == nil || failed(*last)
	}
	return last == nil
}

// restartsByReason returns the restart counters.
func (s *supervisor) restartsByReason() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.byReason)
}

// signal forwards sig to the child's process group and reports whether a
// child was running to get it.
func (s *supervisor) signal(sig syscall.Signal) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.status.Running {
		return false
	}
	s.log.Info("forwarding signal", "signal", signalName(sig), "pid", s.status.PID)
	_ = killGroup(s.status.PID, sig)
	return true
}

// start starts the child with the runner's stdio and environment in its own
// process group (in the foreground of the terminal when stdin is one). It
// returns the channel its exit arrives on, or nil when the runner stops. A
// command that cannot be started exits at once with 127 (not found) or 126.
func (s *supervisor) start() <-chan childExit {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil
	}
	exitc := make(chan childExit, 1)
	now := s.clock.Now().UTC()
	s.status.StartedAt, s.status.NextStart, s.status.ExitCode, s.status.ExitedAt = now, time.Time{}, nil, time.Time{}
	s.probeOK, s.liveKill = true, false
	argv := s.argv
	env := os.Environ()
	cwd, _ := os.Getwd()
	bin, err := lookPath(argv[0], cwd, env)
	if err != nil {
		code := 126
		if errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		s.log.Error("command cannot be started", "argv", argv, "err", err)
		exitc <- childExit{code: code, noStart: true}
		return exitc
	}
	attr := &os.ProcAttr{
		Env:   env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	if isTerminal(0) {
		attr.Sys = &syscall.SysProcAttr{Setpgid: true, Foreground: true, Ctty: 0}
	}
	p, err := s.procs.start(bin, argv, attr)
	if err != nil && attr.Sys.Foreground {
		// stdin is a terminal but not ours to control: run in the background.
		attr.Sys = &syscall.SysProcAttr{Setpgid: true}
		p, err = s.procs.start(bin, argv, attr)
	}
	if err != nil {
		s.log.Error("command cannot be started", "argv", argv, "err", err)
		exitc <- childExit{code: 126, noStart: true}
		return exitc
	}
	s.status.PID = p.Pid
	s.status.Running = true
	s.log.Info("command started", "argv", argv, "pid", p.Pid, "restarts", s.status.Restarts)
	go func() { exitc <- childExit{ws: s.procs.wait(p)} }()
	return exitc
}

// run supervises the child from its first start (exitc) until the restart
// policy or a stop ends it, then closes done.
func (s *supervisor) run(exitc <-chan childExit) {
	defer close(s.done)
	var bo backoff
	for exitc != nil {
		probeCtx, cancelProbe := context.WithCancel(context.Background())
		if s.prober != nil {
			s.mu.Lock()
			pid, running, started := s.status.PID, s.status.Running, s.status.StartedAt
			s.mu.Unlock()
			if running {
				go s.probeLoop(probeCtx, pid, started)
			}
		}
		ex := <-exitc
		cancelProbe()
		e, ranFor, again := s.exited(ex)
		if !again {
			return
		}
		delay := bo.next(ranFor)
		s.mu.Lock()
		s.status.NextStart = s.status.ExitedAt.Add(delay)
		s.log.Info("backing off", "until", s.status.NextStart, "delay", delay.String(), "restarts", s.status.Restarts, "policy", s.policy)
		s.mu.Unlock()
		select {
		case <-s.clock.After(delay):
		case <-s.stopc:
			return
		}
		s.mu.Lock()
		s.status.Restarts++
		s.byReason[e.Reason]++
		s.mu.Unlock()
		exitc = s.start()
	}
}

// exited records an exit and decides whether a restart follows.
func (s *supervisor) exited(ex childExit) (e api.ExitStatus, ranFor time.Duration, again bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e = api.ExitStatus{Code: ex.code, Reason: api.ExitReasonExited}
	if !ex.noStart {
		e.Code = exitCode(ex.ws)
		if ex.ws.Signaled() {
			e.Signal = signalName(ex.ws.Signal())
			e.Reason = api.ExitReasonKilled
		}
	}
	if s.liveKill {
		e.Reason = api.ExitReasonLiveness
	}
	now := s.clock.Now().UTC()
	ranFor = now.Sub(s.status.StartedAt)
	s.status.Running = false
	s.status.ExitCode = &e.Code
	s.status.ExitedAt = now
	s.status.LastExit = &e
	again = !s.stopping && restarts(s.policy, e)
	s.log.Info("command exited", "pid", s.status.PID, "exitCode", e.Code, "signal", e.Signal, "reason", e.Reason,
		"ranFor", ranFor.Round(time.Millisecond).String(), "restart", again)
	return e, ranFor, again
}

// probeLoop runs the liveness probe of the child pid every period from
// initialDelaySeconds after its start, until ctx ends (the child exited).
// A failure makes the child unhealthy at once; failureThreshold failures in
// a row kill it.
func (s *supervisor) probeLoop(ctx context.Context, pid int, started time.Time) {
	pr := s.prober.probe
	wait := time.Duration(pr.InitialDelaySeconds)*time.Second - s.clock.Now().Sub(started)
	failures := int32(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(max(wait, 0)):
		}
		wait = time.Duration(pr.PeriodSeconds) * time.Second
		ok, out := s.prober.run(ctx)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		if ok {
			if !s.probeOK {
				s.log.Info("liveness probe passed", "pid", pid)
			}
			s.probeOK, failures = true, 0
			s.mu.Unlock()
			continue
		}
		failures++
		s.probeOK = false
		s.log.Warn("liveness probe failed", "pid", pid, "failures", failures, "failureThreshold", pr.FailureThreshold, "output", out)
		kill := failures >= pr.FailureThreshold && s.status.Running && s.status.PID == pid && !s.stopping
		if kill {
			s.liveKill = true
		}
		s.mu.Unlock()
		if kill {
			s.killForLiveness(ctx, pid)
			return
		}
	}
}

// killForLiveness sends SIGTERM to the child's group, then SIGKILL after
// the probe's terminationGracePeriodSeconds (else the runner's grace
// period), unless it exited (ctx done) before.
func (s *supervisor) killForLiveness(ctx context.Context, pid int) {
	grace := s.grace
	if g := s.prober.probe.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	s.log.Warn("liveness probe failed too often, stopping the command", "pid", pid, "gracePeriod", grace.String())
	_ = killGroup(pid, syscall.SIGTERM)
	select {
	case <-ctx.Done():
	case <-s.clock.After(grace):
		s.mu.Lock()
		if s.status.Running && s.status.PID == pid {
			s.log.Warn("grace period over, killing the command's process group", "pid", pid, "gracePeriod", grace.String())
			_ = killGroup(pid, syscall.SIGKILL)
		}
		s.mu.Unlock()
	}
}

// stop ends supervision: no more restarts; a running child gets SIGTERM
// (unless sig, already forwarded, was SIGTERM) and SIGKILL after the grace
// period. It returns once no child runs.
func (s *supervisor) stop(sig syscall.Signal) {
	s.mu.Lock()
	if !s.stopping {
		s.stopping = true
		close(s.stopc)
	}
	running, pid := s.status.Running, s.status.PID
	s.mu.Unlock()
	if running {
		if sig != syscall.SIGTERM {
			_ = killGroup(pid, syscall.SIGTERM)
		}
		t := time.NewTimer(s.grace)
		select {
		case <-s.done:
			t.Stop()
		case <-t.C:
			s.log.Warn("grace period over, killing the command's process group", "gracePeriod", s.grace.String())
			_ = killGroup(pid, syscall.SIGKILL)
		}
	}
	<-s.done
}

func isTerminal(fd int) bool {
	var termios syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TCGETS, uintptr(unsafe.Pointer(&termios)))
	return errno == 0
}

// ExitError carries the exit code the runner process should end with.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Run is the whole runner: it listens on cfg.Listen, serves the API,
// supervises cfg.Command and handles the signals of the process. It returns
// when the runner should exit: in wrap mode once the command exited (an
// *ExitError with its code when that is not 0), in server mode after SIGTERM
// (or SIGINT with no command running) or when ctx is done. On SIGTERM the
// command's group gets SIGTERM, then SIGKILL after the grace period.
//
// The kubelet sends a wrapped container's first readiness probe as soon as
// it sees the container running, so Run listens before anything else (a
// probe that finds no listener fails, and the next comes a period later),
// and accepts connections only once the command's first start is done: the
// kernel's backlog holds a probe for those milliseconds, and its answer is
// the started command's, not "command not running".
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	log := cfg.Logger
	if cfg.Reap && os.Getpid() != 1 {
		if err := setChildSubreaper(); err != nil {
			log.Warn("cannot become child subreaper; orphans will not be reaped", "err", err)
		}
	}
	s, err := New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer s.Close()
	log.Info("serving", "addr", ln.Addr().String(), "mode", cfg.Mode, "auth", s.authState(), "workdir", cfg.Workdir, "version", cfg.Version, "pid", os.Getpid())

	rl := &running{mode: cfg.Mode, log: log, srv: &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}

	sigc := make(chan os.Signal, 16)
	signal.Notify(sigc, forwarded...)
	defer signal.Stop(sigc)

	if len(cfg.Command) > 0 {
		rl.sup = s.supervise(cfg.Command)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- rl.srv.Serve(ln) }()
	return rl.wait(ctx, sigc, serveErr)
}

// authState names how the API authenticates at start, for the log, and
// warns when no token is configured.
func (s *Server) authState() string {
	cfg, log := &s.cfg, s.log
	switch {
	case cfg.ClaimVerifier != "":
		return "waitingForClaim"
	case s.TokenConfigured():
		return "token"
	case cfg.InsecureLoopback:
		log.Warn("no API token configured: the API answers loopback clients only (insecure loopback opt-in), probes answer everyone", "tokenFile", cfg.TokenFile)
		return "loopbackOnly"
	default:
		log.Warn("no API token configured: the API is closed, only the probes answer, until the token file appears", "tokenFile", cfg.TokenFile)
		return "closed"
	}
}

// supervise starts the command and its supervisor, which /status and the
// probes then report on. The first start is done when it returns.
func (s *Server) supervise(argv []string) *supervisor {
	sup := newSupervisor(s, argv)
	s.mu.Lock()
	s.sup = sup
	s.mu.Unlock()
	go sup.run(sup.start())
	return sup
}

// running is a started runner: its API server and, when it has a command,
// the command's supervisor.
type running struct {
	mode string
	log  *slog.Logger
	srv  *http.Server
	sup  *supervisor // nil without a command
}

// wait handles the process's signals and the command's end until the
// runner should exit (see Run), and returns what Run returns.
func (rl *running) wait(ctx context.Context, sigc <-chan os.Signal, serveErr <-chan error) error {
	var childDone <-chan struct{}
	if rl.sup != nil {
		childDone = rl.sup.done
	}
	for {
		select {
		case <-childDone:
			childDone = nil
			if rl.mode == api.ModeWrap {
				shutdown(rl.srv, rl.log)
				return exitErr(rl.sup.exitCode())
			}
		case sig := <-sigc:
			ssig := sig.(syscall.Signal)
			delivered := rl.sup != nil && rl.sup.signal(ssig)
			if ssig == syscall.SIGTERM || (!delivered && (ssig == syscall.SIGINT || ssig == syscall.SIGQUIT)) {
				rl.log.Info("stopping", "signal", signalName(ssig))
				return rl.stop(ssig)
			}
		case <-ctx.Done():
			rl.log.Info("stopping", "reason", context.Cause(ctx).Error())
			return rl.stop(syscall.SIGINT)
		case err := <-serveErr:
			return fmt.Errorf("serving the API: %w", err)
		}
	}
}

// stop stops the command's group with sig (SIGKILL after the grace
// period) and the API server; in wrap mode the command's exit code is the
// runner's.
func (rl *running) stop(sig syscall.Signal) error {
	if rl.sup != nil {
		rl.sup.stop(sig)
	}
	shutdown(rl.srv, rl.log)
	if rl.mode == api.ModeWrap && rl.sup != nil {
		return exitErr(rl.sup.exitCode())
	}
	return nil
}

func exitErr(code int) error {
	if code == 0 {
		return nil
	}
	return &ExitError{Code: code}
}

// shutdown lets running requests finish briefly, then closes them (which
// kills their commands).
func shutdown(srv *http.Server, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Debug("closing remaining connections", "err", err)
		_ = srv.Close()
	}
}

func (s *Server) supervisor() *supervisor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sup
}

// healthy is the one healthy bit of /status: the runner serves (it answers),
// and where a child is expected to run, it runs and its liveness probe
// passed last time.
func (s *Server) healthy() bool {
	sup := s.supervisor()
	return sup == nil || sup.healthy()
}

// notReady says why /readyz answers 503; empty when ready.
func (s *Server) notReady() string {
	sup := s.supervisor()
	if sup == nil {
		if s.cfg.Mode == api.ModeWrap {
			return "command not running"
		}
		return ""
	}
	if s.cfg.Mode == api.ModeWrap {
		if c := sup.snapshot(); !c.Running {
			return "command not running"
		}
	} else if sup.policy == api.RestartNever {
		return ""
	}
	if !sup.healthy() {
		return "command not healthy"
	}
	return ""
}

// appendChildMetrics adds the restart counters and the healthy bit.
func (s *Server) appendChildMetrics(b []byte) []byte {
	sup := s.supervisor()
	if sup == nil {
		return b
	}
	byReason := sup.restartsByReason()
	b = metricHeader(b, "sandbox_runner_child_restarts_total", "counter", "Restarts of the supervised command, by how it ended before (exited, liveness, killed).")
	for _, r := range []string{api.ExitReasonExited, api.ExitReasonLiveness, api.ExitReasonKilled} {
		b = fmt.Appendf(b, "sandbox_runner_child_restarts_total{reason=%q} %d\n", r, byReason[r])
	}
	healthy := 0
	if sup.healthy() {
		healthy = 1
	}
	b = metricHeader(b, "sandbox_runner_child_healthy", "gauge", "1 while the supervised command is healthy: running where its restart policy expects it, with its liveness probe passing.")
	return fmt.Appendf(b, "sandbox_runner_child_healthy %d\n", healthy)
}
