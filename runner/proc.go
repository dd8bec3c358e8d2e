package runner

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

// procTable starts processes and delivers their wait status.
//
// In reaping mode (PID 1 or child subreaper) one goroutine collects every
// exited child with wait4(-1), so orphans re-parented to the runner never
// stay zombies. A global wait4 would steal the status of the processes the
// runner itself started if they were waited for with os/exec, so every start
// goes through this table: the process is registered under the same lock that
// the reaper holds, which closes the window in which it could exit and be
// reaped before anyone listens for it.
//
// Without reaping (the runner embedded in another program, as in tests) each
// process is waited for on its own and nothing else is touched.
type procTable struct {
	reap bool

	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus

	orphans atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
}

func newProcTable(reap bool) *procTable {
	t := &procTable{reap: reap, waiters: map[int]chan syscall.WaitStatus{}}
	if reap {
		t.stop = make(chan struct{})
		t.done = make(chan struct{})
		sigc := make(chan os.Signal, 1)
		signal.Notify(sigc, syscall.SIGCHLD)
		go func() {
			defer close(t.done)
			defer signal.Stop(sigc)
			t.reapAll()
			for {
				select {
				case <-sigc:
					t.reapAll()
				case <-t.stop:
					return
				}
			}
		}()
	}
	return t
}

// close stops the reaper goroutine.
func (t *procTable) close() {
	if t.reap {
		close(t.stop)
		<-t.done
	}
}

// reapAll collects every exited child without blocking and hands the
// statuses of registered processes to their waiters.
func (t *procTable) reapAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if c, ok := t.waiters[pid]; ok {
			delete(t.waiters, pid)
			c <- ws
			continue
		}
		t.orphans.Add(1)
	}
}

// start starts a process and returns a channel that receives its wait
// status once.
func (t *procTable) start(argv0 string, argv []string, attr *os.ProcAttr) (*os.Process, <-chan syscall.WaitStatus, error) {
	c := make(chan syscall.WaitStatus, 1)
	if !t.reap {
		p, err := os.StartProcess(argv0, argv, attr)
		if err != nil {
			return nil, nil, err
		}
		go func() {
			st, err := p.Wait()
			if err != nil {
				// Only ECHILD can get here: someone else reaped it.
				c <- syscall.WaitStatus(255 << 8)
				return
			}
			c <- st.Sys().(syscall.WaitStatus)
		}()
		return p, c, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p, err := os.StartProcess(argv0, argv, attr)
	if err != nil {
		return nil, nil, err
	}
	t.waiters[p.Pid] = c
	return p, c, nil
}

// exitCode turns a wait status into a shell-style exit code: the status, or
// 128+N when signal N killed the process.
func exitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 255
}

// killGroup sends sig to the process group led by pid; a group that is
// already gone is not an error.
func killGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return nil
	}
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// setChildSubreaper makes orphans of the runner's descendants its own
// children (prctl PR_SET_CHILD_SUBREAPER), as they would be for PID 1.
func setChildSubreaper() error {
	const prSetChildSubreaper = 36
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return errno
	}
	return nil
}
