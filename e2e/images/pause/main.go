// Command pause is the e2e cluster's pod sandbox image: it sleeps until
// SIGTERM or SIGINT and reaps the zombies of a shared PID namespace, like the
// Kubernetes pause container. Build it with CGO_ENABLED=0 (scratch image).
package main

import (
	"errors"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	// One line once the signals are caught (a sandbox's output goes
	// nowhere; a test waits for it).
	os.Stderr.WriteString("pause: waiting for SIGTERM or SIGINT\n")
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
