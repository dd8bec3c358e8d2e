package runner

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// procTable starts processes and delivers their wait status.
//
// Every process the runner starts is waited for on its own (os.Process.Wait,
// which waits on that pid only, through a pidfd). In reaping mode (PID 1 or
// child subreaper) a second goroutine also collects orphans: descendants
// re-parented to the runner, which would otherwise stay zombies. It peeks
// at an exited child with waitid(WNOWAIT) and reaps it only when it is not
// one the runner started, so it never steals a status that a waiter
// expects. Starting and registering a process happen under the lock that
// the orphan reaper holds exclusively while it peeks (starts share it, so
// forks still run concurrently), which closes the window in which a
// just-started process could exit before it is known.
//
// The orphan reaper runs on a short ticker rather than on SIGCHLD: a signal
// per exited command made every execution pay for two goroutine handoffs,
// which cost a fifth of the throughput of /execute; an orphan now stays a
// zombie for at most orphanReapInterval.
type procTable struct {
	reap bool

	// startMu is held shared by starts (forks run concurrently) and
	// exclusively by the orphan reaper, so that it never sees a process
	// that is started but not yet registered.
	startMu sync.RWMutex
	mu      sync.Mutex // guards tracked
	tracked map[int]struct{}

	orphans atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
}

// orphanReapInterval bounds how long an orphan stays a zombie.
const orphanReapInterval = 200 * time.Millisecond

func newProcTable(reap bool) *procTable {
	t := &procTable{reap: reap, tracked: map[int]struct{}{}}
	if reap {
		t.stop = make(chan struct{})
		t.done = make(chan struct{})
		go func() {
			defer close(t.done)
			tick := time.NewTicker(orphanReapInterval)
			defer tick.Stop()
			for {
				t.reapOrphans()
				select {
				case <-tick.C:
				case <-t.stop:
					return
				}
			}
		}()
	}
	return t
}

// close stops the orphan reaper.
func (t *procTable) close() {
	if t.reap {
		close(t.stop)
		<-t.done
	}
}

// reapOrphans reaps exited children that the runner did not start, until it
// finds none, or finds one of its own (whose waiter reaps it; the next tick
// looks again).
func (t *procTable) reapOrphans() {
	t.startMu.Lock()
	defer t.startMu.Unlock()
	for {
		pid, err := peekExited()
		if err != nil || pid <= 0 {
			return
		}
		t.mu.Lock()
		_, ours := t.tracked[pid]
		t.mu.Unlock()
		if ours {
			return
		}
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); err != nil || got != pid {
			return
		}
		t.orphans.Add(1)
	}
}

// peekExited returns the pid of an exited child without reaping it
// (waitid P_ALL, WEXITED|WNOHANG|WNOWAIT); 0 when there is none.
func peekExited() (int, error) {
	const (
		pAll    = 0
		wExited = 0x4
		wNoWait = 0x1000000
	)
	// siginfo_t is 128 bytes; si_pid is the int32 at offset 16 on every
	// 64-bit Linux.
	var info [128]byte
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pAll, 0, uintptr(unsafe.Pointer(&info[0])), wExited|syscall.WNOHANG|wNoWait, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(*(*int32)(unsafe.Pointer(&info[16]))), nil
	}
}

// start starts a process; the caller must call wait for it once.
func (t *procTable) start(argv0 string, argv []string, attr *os.ProcAttr) (*os.Process, error) {
	if !t.reap {
		return os.StartProcess(argv0, argv, attr)
	}
	t.startMu.RLock()
	defer t.startMu.RUnlock()
	p, err := os.StartProcess(argv0, argv, attr)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.tracked[p.Pid] = struct{}{}
	t.mu.Unlock()
	return p, nil
}

// wait blocks until p exits, reaps it and returns its status. Waiting in
// the caller's goroutine (not a helper that hands the status over) saves a
// wakeup per command, which counts on a loaded machine.
func (t *procTable) wait(p *os.Process) syscall.WaitStatus {
	pid := p.Pid
	st, err := p.Wait()
	if t.reap {
		t.mu.Lock()
		delete(t.tracked, pid)
		t.mu.Unlock()
	}
	if err != nil {
		// Only ECHILD can get here: someone else reaped it.
		return syscall.WaitStatus(255 << 8)
	}
	return st.Sys().(syscall.WaitStatus)
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
