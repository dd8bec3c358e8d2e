package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"sandbox.io/injector/runner/api"
)

// waitStatus polls /status until cond holds (generous deadline).
func (p *proc) waitStatus(t *testing.T, what string, cond func(*api.Status) bool) *api.Status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := p.client().Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: status %+v child %+v\nlog:\n%s", what, st, st.Child, p.log())
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
}

func readyzCode(t *testing.T, p *proc) int {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestLivenessRestartsChildInPlace is pod-controller's demo against the
// real binary: removing the file an exec probe reads makes the child
// unhealthy, the runner kills and restarts it in place, and all is healthy
// again.
func TestLivenessRestartsChildInPlace(t *testing.T) {
	t.Parallel()
	p := startRunner(t, "run", "--listen=127.0.0.1:0", "--restart-policy=Always",
		`--liveness-probe={"exec":{"command":["cat","health"]},"periodSeconds":1,"failureThreshold":2}`,
		"--", "sh", "-c", "touch health; echo started; exec sleep 300")
	p.waitLine(t, "started")
	first := p.waitStatus(t, "a healthy child", func(st *api.Status) bool { return st.Healthy && st.Child.Running })
	if err := p.client().DeleteFile(t.Context(), "health", false); err != nil {
		t.Fatal(err)
	}
	p.waitStatus(t, "healthy false", func(st *api.Status) bool { return !st.Healthy })
	p.waitLine(t, "started")
	st := p.waitStatus(t, "a restarted, healthy child", func(st *api.Status) bool {
		return st.Healthy && st.Child.Running && st.Child.Restarts == 1
	})
	if st.Child.PID == first.Child.PID || st.Child.LastExit == nil || st.Child.LastExit.Reason != api.ExitReasonLiveness || st.Child.LastExit.Signal != "SIGTERM" {
		t.Errorf("child %+v last exit %+v, want a new pid after a liveness kill by SIGTERM", st.Child, st.Child.LastExit)
	}
	// The healthy bit is the last liveness probe's: on a loaded machine a
	// probe can time out between the two reads, so readyz gets a while to
	// agree.
	code := readyzCode(t, p)
	for deadline := time.Now().Add(10 * time.Second); code != http.StatusOK && time.Now().Before(deadline); code = readyzCode(t, p) {
		time.Sleep(100 * time.Millisecond)
	}
	if code != http.StatusOK {
		t.Errorf("readyz %d once healthy again", code)
	}
	for _, msg := range []string{`"msg":"liveness probe failed"`, `"msg":"liveness probe failed too often, stopping the command"`, `"reason":"liveness"`, `"msg":"backing off"`} {
		if !strings.Contains(p.log(), msg) {
			t.Errorf("log lacks %s:\n%s", msg, p.log())
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if got := p.exitCode(t); got != 0 {
		t.Errorf("exit code %d, want 0", got)
	}
}

// TestCrashLoopBacksOffAndStops: a failing child is restarted with a
// growing delay; SIGTERM during the back-off stops the runner at once.
func TestCrashLoopBacksOffAndStops(t *testing.T) {
	t.Parallel()
	p := startRunner(t, "run", "--listen=127.0.0.1:0", "--restart-policy=OnFailure", "--", "sh", "-c", "echo run; exit 1")
	p.waitLine(t, "run")
	p.waitLine(t, "run")
	st := p.waitStatus(t, "backing off after the first restart", func(st *api.Status) bool {
		return st.Child.Restarts == 1 && !st.Child.NextStart.IsZero()
	})
	if d := st.Child.NextStart.Sub(st.Child.ExitedAt); d != 2*time.Second {
		t.Errorf("second back-off %s, want 2s", d)
	}
	if st.Healthy || st.Child.LastExit == nil || *st.Child.LastExit != (api.ExitStatus{Code: 1, Reason: api.ExitReasonExited}) {
		t.Errorf("status %+v child %+v last exit %+v", st, st.Child, st.Child.LastExit)
	}
	if code := readyzCode(t, p); code != http.StatusServiceUnavailable {
		t.Errorf("readyz %d while crash looping under OnFailure, want 503", code)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if got := p.exitCode(t); got != 0 {
		t.Errorf("exit code %d, want 0", got)
	}
}
