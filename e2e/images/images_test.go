// Package images_test checks the e2e test images' programs as real
// processes: built with the go tool, started, and stopped by a signal.
package images_test

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func build(t *testing.T, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", out, pkg)
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// stopWith sends sig and checks that the process exits 0 (a generous
// timeout; the machine may be loaded).
func stopWith(t *testing.T, cmd *exec.Cmd, sig syscall.Signal) {
	t.Helper()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after %v: %v, want status 0", sig, err)
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("still running a minute after %v", sig)
	}
}

func TestHelloPrintsArgsUntilSignalled(t *testing.T) {
	t.Parallel()
	bin := build(t, "sandbox.io/injector/e2e/images/hello")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(bin, "a b", "c")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"args":["a b","c"]}` + "\n"; line != want {
			t.Errorf("printed %q, want %q", line, want)
		}
		// It keeps running after printing: the line was read, the
		// process has not exited (Wait would return).
		stopWith(t, cmd, sig)
	}
}

func TestPauseStopsOnSignal(t *testing.T) {
	t.Parallel()
	bin := build(t, "sandbox.io/injector/e2e/images/pause")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(bin)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The line says the signals are caught.
		if _, err := bufio.NewReader(stderr).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		// SIGCHLD must not stop it (it only reaps).
		if err := cmd.Process.Signal(syscall.SIGCHLD); err != nil {
			t.Fatal(err)
		}
		stopWith(t, cmd, sig)
	}
}
