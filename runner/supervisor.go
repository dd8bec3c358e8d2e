package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// supervisor tracks the supervised command.
type supervisor struct {
	mu     sync.Mutex
	status api.ChildStatus
	done   chan struct{} // closed once the command exited
}

func (s *supervisor) snapshot() *api.ChildStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.status
	c.Argv = slices.Clone(c.Argv)
	return &c
}

func (s *supervisor) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status.Running
}

func (s *supervisor) exitCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.ExitCode == nil {
		return 0
	}
	return *s.status.ExitCode
}

func (s *supervisor) exited(code int) {
	s.mu.Lock()
	s.status.Running = false
	s.status.ExitCode = &code
	s.status.ExitedAt = time.Now().UTC()
	s.mu.Unlock()
	close(s.done)
}

// startChild starts the supervised command with the runner's stdio and
// environment in its own process group (in the foreground of the terminal
// when stdin is one). A command that cannot be started counts as exited
// with 127 (not found) or 126.
func (s *Server) startChild(argv []string) *supervisor {
	sup := &supervisor{done: make(chan struct{}), status: api.ChildStatus{Argv: slices.Clone(argv), StartedAt: time.Now().UTC()}}
	s.mu.Lock()
	s.sup = sup
	s.mu.Unlock()

	env := os.Environ()
	cwd, _ := os.Getwd()
	bin, err := lookPath(argv[0], cwd, env)
	if err != nil {
		code := 126
		if errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		s.log.Error("command cannot be started", "argv", argv, "error", err)
		sup.exited(code)
		return sup
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
		s.log.Error("command cannot be started", "argv", argv, "error", err)
		sup.exited(126)
		return sup
	}
	sup.mu.Lock()
	sup.status.PID = p.Pid
	sup.status.Running = true
	sup.mu.Unlock()
	s.log.Info("command started", "argv", argv, "pid", p.Pid)
	pid := p.Pid
	go func() {
		code := exitCode(s.procs.wait(p))
		s.log.Info("command exited", "pid", pid, "exitCode", code)
		sup.exited(code)
	}()
	return sup
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
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	log := cfg.Logger
	if cfg.Reap && os.Getpid() != 1 {
		if err := setChildSubreaper(); err != nil {
			log.Warn("cannot become child subreaper; orphans will not be reaped", "error", err)
		}
	}
	s, err := New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	auth := "token"
	switch {
	case cfg.ClaimVerifier != "":
		auth = "waitingForClaim"
	case s.TokenConfigured():
	case cfg.InsecureLoopback:
		auth = "loopbackOnly"
		log.Warn("no API token configured: the API answers loopback clients only (insecure loopback opt-in), probes answer everyone", "tokenFile", cfg.TokenFile)
	default:
		auth = "closed"
		log.Warn("no API token configured: the API is closed, only the probes answer, until the token file appears", "tokenFile", cfg.TokenFile)
	}
	log.Info("serving", "addr", ln.Addr().String(), "mode", cfg.Mode, "auth", auth, "workdir", cfg.Workdir, "version", cfg.Version, "pid", os.Getpid())

	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	sigc := make(chan os.Signal, 16)
	signal.Notify(sigc, forwarded...)
	defer signal.Stop(sigc)

	var sup *supervisor
	var childDone <-chan struct{}
	if len(cfg.Command) > 0 {
		sup = s.startChild(cfg.Command)
		childDone = sup.done
	}
	stop := func(sig syscall.Signal) error {
		if sup != nil && sup.running() {
			if sig != syscall.SIGTERM {
				_ = killGroup(sup.snapshot().PID, syscall.SIGTERM)
			}
			t := time.NewTimer(cfg.GracePeriod)
			select {
			case <-sup.done:
				t.Stop()
			case <-t.C:
				log.Warn("grace period over, killing the command's process group", "gracePeriod", cfg.GracePeriod.String())
				_ = killGroup(sup.snapshot().PID, syscall.SIGKILL)
				<-sup.done
			}
		}
		shutdown(srv, log)
		if cfg.Mode == api.ModeWrap && sup != nil {
			return exitErr(sup.exitCode())
		}
		return nil
	}
	for {
		select {
		case <-childDone:
			childDone = nil
			if cfg.Mode == api.ModeWrap {
				shutdown(srv, log)
				return exitErr(sup.exitCode())
			}
		case sig := <-sigc:
			ssig := sig.(syscall.Signal)
			running := sup != nil && sup.running()
			if running {
				log.Info("forwarding signal", "signal", ssig.String(), "pid", sup.snapshot().PID)
				_ = killGroup(sup.snapshot().PID, ssig)
			}
			if ssig == syscall.SIGTERM || (!running && (ssig == syscall.SIGINT || ssig == syscall.SIGQUIT)) {
				log.Info("stopping", "signal", ssig.String())
				return stop(ssig)
			}
		case <-ctx.Done():
			log.Info("stopping", "reason", context.Cause(ctx).Error())
			return stop(syscall.SIGINT)
		case err := <-serveErr:
			return fmt.Errorf("serving the API: %w", err)
		}
	}
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
		log.Debug("closing remaining connections", "error", err)
		_ = srv.Close()
	}
}
