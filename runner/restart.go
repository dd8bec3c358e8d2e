package runner

import (
	"strconv"
	"syscall"
	"time"

	"sandbox.io/injector/runner/api"
)

// The kubelet's reduced CrashLoopBackOff decay: the first restart waits
// backoffInitial, each next one twice as long up to backoffMax, and a child
// that ran backoffReset or longer starts the sequence again.
const (
	backoffInitial = time.Second
	backoffMax     = 60 * time.Second
	backoffReset   = 10 * time.Minute
)

// backoff is the delay before each restart of the child.
type backoff struct{ last time.Duration }

// next is the delay before the restart of a child that ran for ranFor.
func (b *backoff) next(ranFor time.Duration) time.Duration {
	if b.last == 0 || ranFor >= backoffReset {
		b.last = backoffInitial
	} else {
		b.last = min(2*b.last, backoffMax)
	}
	return b.last
}

// restarts reports whether policy restarts a child that ended with e.
// OnFailure restarts after a non-zero code, a signal or a liveness kill,
// as the kubelet does for a container.
func restarts(policy string, e api.ExitStatus) bool {
	switch policy {
	case api.RestartAlways:
		return true
	case api.RestartOnFailure:
		return failed(e)
	}
	return false
}

func failed(e api.ExitStatus) bool { return e.Code != 0 || e.Reason != api.ExitReasonExited }

// clock is time, replaced by a fake one in tests.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// signalNames are the names of the signals that end processes, for
// api.ExitStatus.Signal.
var signalNames = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
	8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
	14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM",
	27: "SIGPROF", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
}

func signalName(s syscall.Signal) string {
	if int(s) < len(signalNames) && signalNames[s] != "" {
		return signalNames[s]
	}
	return "SIG" + strconv.Itoa(int(s))
}
