package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"sandbox.io/injector/runner/api"
)

// fakeClock is a clock that moves only when the test steps it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := make(chan time.Time, 1)
	if d <= 0 {
		c <- f.now
		return c
	}
	f.waiters = append(f.waiters, fakeWaiter{at: f.now.Add(d), c: c})
	return c
}

// step moves the clock and fires the waiters that are due.
func (f *fakeClock) step(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.at.After(f.now) {
			kept = append(kept, w)
			continue
		}
		w.c <- f.now
	}
	f.waiters = kept
}

func (f *fakeClock) pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// armed reports whether a timer waits for instant at.
func (f *fakeClock) armed(at time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.waiters {
		if w.at.Equal(at) {
			return true
		}
	}
	return false
}

// eventually polls cond until it holds (generous deadline: a loaded
// machine), failing with what() otherwise.
func eventually(t *testing.T, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what())
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
}

// testSupervisor is a server and its supervisor on a fake clock, without a
// listener: the handlers are called directly.
type testSupervisor struct {
	srv   *Server
	sup   *supervisor
	clock *fakeClock
}

func startSupervisor(t *testing.T, cfg Config) *testSupervisor {
	t.Helper()
	fc := newFakeClock()
	cfg.clock = fc
	if cfg.Workdir == "" {
		cfg.Workdir = filepath.Join(t.TempDir(), "work")
	}
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = 30 * time.Second
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	sup := newSupervisor(s, cfg.Command)
	s.mu.Lock()
	s.sup = sup
	s.mu.Unlock()
	go sup.run(sup.start())
	t.Cleanup(func() {
		sup.stop(syscall.SIGINT)
		s.Close()
	})
	return &testSupervisor{srv: s, sup: sup, clock: fc}
}

func (ts *testSupervisor) status() *api.Status {
	rec := httptest.NewRecorder()
	ts.srv.status(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	var st api.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		panic(err)
	}
	return &st
}

func (ts *testSupervisor) readyz() int {
	rec := httptest.NewRecorder()
	ts.srv.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code
}

func (ts *testSupervisor) metrics() string {
	rec := httptest.NewRecorder()
	ts.srv.serveMetrics(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

func (ts *testSupervisor) describe() string {
	st := ts.status()
	c := st.Child
	if c == nil {
		return "no child"
	}
	return fmt.Sprintf("healthy=%v running=%v restarts=%d last_exit=%+v next_start=%v pending timers=%d",
		st.Healthy, c.Running, c.Restarts, c.LastExit, c.NextStart, ts.clock.pending())
}

// waitExited waits until the child exited with restarts restarts so far,
// and, when backingOff, until the timer of its next start is armed (else
// until it will not start again).
func (ts *testSupervisor) waitExited(t *testing.T, restarts int, backingOff bool) *api.ChildStatus {
	t.Helper()
	var c *api.ChildStatus
	eventually(t, ts.describe, func() bool {
		c = ts.status().Child
		if c.Restarts != restarts || c.Running || c.LastExit == nil {
			return false
		}
		if backingOff {
			return !c.NextStart.IsZero() && ts.clock.armed(c.NextStart)
		}
		select {
		case <-ts.sup.done:
			return true
		default:
			return false
		}
	})
	return c
}

func TestBackoffSequence(t *testing.T) {
	t.Parallel()
	var b backoff
	var got []time.Duration
	for range 9 {
		got = append(got, b.next(time.Second))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i := range want {
		want[i] *= time.Second
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delays (-want +got):\n%s", diff)
	}
	if d := b.next(10 * time.Minute); d != time.Second {
		t.Errorf("after 10 minutes of running the delay is %s, want it reset to 1s", d)
	}
	if d := b.next(9 * time.Minute); d != 2*time.Second {
		t.Errorf("after a reset and 9 minutes of running the delay is %s, want 2s", d)
	}
}

func TestRestartDecision(t *testing.T) {
	t.Parallel()
	ok := api.ExitStatus{Code: 0, Reason: api.ExitReasonExited}
	bad := api.ExitStatus{Code: 1, Reason: api.ExitReasonExited}
	killed := api.ExitStatus{Code: 137, Signal: "SIGKILL", Reason: api.ExitReasonKilled}
	live := api.ExitStatus{Code: 0, Reason: api.ExitReasonLiveness} // trapped SIGTERM, exited 0
	for _, tc := range []struct {
		policy string
		e      api.ExitStatus
		want   bool
	}{
		{api.RestartAlways, ok, true}, {api.RestartAlways, bad, true}, {api.RestartAlways, live, true},
		{api.RestartOnFailure, ok, false}, {api.RestartOnFailure, bad, true}, {api.RestartOnFailure, killed, true}, {api.RestartOnFailure, live, true},
		{api.RestartNever, ok, false}, {api.RestartNever, bad, false}, {api.RestartNever, live, false},
	} {
		if got := restarts(tc.policy, tc.e); got != tc.want {
			t.Errorf("restarts(%s, %+v) = %v, want %v", tc.policy, tc.e, got, tc.want)
		}
	}
}

func TestRestartAlwaysBacksOffInPlace(t *testing.T) {
	t.Parallel()
	ts := startSupervisor(t, Config{Command: []string{"sh", "-c", "exit 3"}, RestartPolicy: api.RestartAlways})
	start := ts.clock.Now()

	c := ts.waitExited(t, 0, true)
	if want := (api.ExitStatus{Code: 3, Reason: api.ExitReasonExited}); *c.LastExit != want {
		t.Errorf("last exit %+v, want %+v", *c.LastExit, want)
	}
	if !c.NextStart.Equal(start.Add(time.Second)) {
		t.Errorf("next start %v, want 1s after the exit (%v)", c.NextStart, start.Add(time.Second))
	}
	if st := ts.status(); st.Healthy {
		t.Error("healthy while backing off under Always")
	}
	if code := ts.readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("readyz %d while backing off under Always, want 503", code)
	}

	// Not a moment before the back-off ends.
	ts.clock.step(999 * time.Millisecond)
	if c := ts.status().Child; c.Restarts != 0 || !ts.clock.armed(c.NextStart) {
		t.Fatalf("restarted before the back-off ended: %s", ts.describe())
	}
	// Each next delay doubles: 1s, 2s, 4s, 8s.
	delay := time.Millisecond
	for i, next := range []time.Duration{2, 4, 8} {
		ts.clock.step(delay)
		c := ts.waitExited(t, i+1, true)
		delay = next * time.Second
		if got := c.NextStart.Sub(ts.clock.Now()); got != delay {
			t.Errorf("restart %d: next start in %s, want %s", i+1, got, delay)
		}
	}
	if m := ts.metrics(); !strings.Contains(m, `sandbox_runner_child_restarts_total{reason="exited"} 3`) ||
		!strings.Contains(m, "sandbox_runner_child_healthy 0") {
		t.Errorf("metrics lack the restarts and the healthy bit:\n%s", m)
	}
}

func TestRestartOnFailureStopsAfterSuccess(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "ran-once")
	ts := startSupervisor(t, Config{
		Command:       []string{"sh", "-c", `test -e "$0" && exit 0; touch "$0"; exit 1`, marker},
		RestartPolicy: api.RestartOnFailure,
	})
	ts.waitExited(t, 0, true)
	if code := ts.readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("readyz %d after a failure under OnFailure, want 503", code)
	}
	ts.clock.step(time.Second)
	c := ts.waitExited(t, 1, false)
	if c.LastExit.Code != 0 || !c.NextStart.IsZero() {
		t.Errorf("after the success: %s", ts.describe())
	}
	<-ts.sup.done
	if st := ts.status(); !st.Healthy || ts.readyz() != http.StatusOK {
		t.Errorf("a child that succeeded under OnFailure is not expected to run: healthy %v, readyz %d", st.Healthy, ts.readyz())
	}
}

func TestRestartNeverKeepsServing(t *testing.T) {
	t.Parallel()
	ts := startSupervisor(t, Config{Command: []string{"sh", "-c", "exit 1"}})
	<-ts.sup.done
	c := ts.status().Child
	if c.Restarts != 0 || c.LastExit == nil || c.LastExit.Code != 1 || ts.clock.pending() != 0 {
		t.Errorf("under Never: %s", ts.describe())
	}
	if ts.readyz() != http.StatusOK || !ts.status().Healthy {
		t.Errorf("under Never an exited child keeps the runner ready: readyz %d, %s", ts.readyz(), ts.describe())
	}
}

// TestLivenessProbeTiming drives an exec probe with the fake clock: no
// probe before initialDelaySeconds, one per period, unhealthy at the first
// failure, killed (SIGTERM to the group) at failureThreshold, restarted
// after the back-off and healthy again.
func TestLivenessProbeTiming(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	health, count := filepath.Join(dir, "health"), filepath.Join(dir, "count")
	if err := os.WriteFile(health, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	probe, err := api.ParseProbe(fmt.Sprintf(`{"exec":{"command":["sh","-c","echo >> %s; cat %s"]},"initialDelaySeconds":5,"periodSeconds":10,"failureThreshold":2}`, count, health))
	if err != nil {
		t.Fatal(err)
	}
	ts := startSupervisor(t, Config{Command: []string{"sleep", "300"}, RestartPolicy: api.RestartAlways, LivenessProbe: probe})
	probes := func() int {
		b, _ := os.ReadFile(count)
		return bytes.Count(b, []byte("\n"))
	}
	waitProbes := func(n int) {
		t.Helper()
		eventually(t, func() string { return fmt.Sprintf("%d probes, want %d; %s", probes(), n, ts.describe()) },
			func() bool { return probes() == n && ts.clock.pending() == 1 })
	}
	eventually(t, ts.describe, func() bool { return ts.clock.pending() == 1 })
	ts.clock.step(4 * time.Second)
	if n := probes(); n != 0 {
		t.Fatalf("%d probes before initialDelaySeconds", n)
	}
	ts.clock.step(time.Second)
	waitProbes(1)
	if !ts.status().Healthy {
		t.Fatal("unhealthy after a passing probe")
	}

	if err := os.Remove(health); err != nil {
		t.Fatal(err)
	}
	ts.clock.step(10 * time.Second)
	waitProbes(2)
	st := ts.status()
	if st.Healthy || !st.Child.Running || ts.readyz() != http.StatusServiceUnavailable {
		t.Fatalf("after one failure (threshold 2) want unhealthy, still running, readyz 503: %s readyz %d", ts.describe(), ts.readyz())
	}
	pid := st.Child.PID

	ts.clock.step(10 * time.Second) // second failure: SIGTERM to the group
	c := ts.waitExited(t, 0, true)
	if want := (api.ExitStatus{Code: 143, Signal: "SIGTERM", Reason: api.ExitReasonLiveness}); *c.LastExit != want {
		t.Errorf("last exit %+v, want %+v", *c.LastExit, want)
	}
	if err := os.WriteFile(health, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ts.clock.step(time.Second) // the back-off
	eventually(t, ts.describe, func() bool {
		st := ts.status()
		return st.Child.Running && st.Child.Restarts == 1 && st.Child.PID != pid && st.Healthy
	})
	if m := ts.metrics(); !strings.Contains(m, `sandbox_runner_child_restarts_total{reason="liveness"} 1`) {
		t.Errorf("metrics lack the liveness restart:\n%s", m)
	}
}

// TestLivenessKillIgnoringSIGTERM: a child whose group ignores SIGTERM is
// killed with SIGKILL once the probe's terminationGracePeriodSeconds ends.
func TestLivenessKillIgnoringSIGTERM(t *testing.T) {
	t.Parallel()
	probe, err := api.ParseProbe(`{"exec":{"command":["false"]},"initialDelaySeconds":1,"failureThreshold":1,"terminationGracePeriodSeconds":7}`)
	if err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(t.TempDir(), "ready")
	ts := startSupervisor(t, Config{Command: []string{"sh", "-c", `trap "" TERM; touch "$0"; sleep 300`, ready}, LivenessProbe: probe})
	// Probe only once the shell ignores SIGTERM.
	eventually(t, ts.describe, func() bool { _, err := os.Stat(ready); return err == nil && ts.clock.pending() == 1 })
	ts.clock.step(time.Second)
	eventually(t, ts.describe, func() bool { return !ts.status().Healthy && ts.clock.pending() == 1 })
	// The grace timer is armed; SIGTERM is ignored, so the child runs on.
	ts.clock.step(6 * time.Second)
	if c := ts.status().Child; !c.Running {
		t.Fatalf("the child ended before the grace period: %s", ts.describe())
	}
	ts.clock.step(time.Second)
	<-ts.sup.done
	c := ts.status().Child
	if want := (api.ExitStatus{Code: 137, Signal: "SIGKILL", Reason: api.ExitReasonLiveness}); c.LastExit == nil || *c.LastExit != want {
		t.Errorf("last exit %+v, want %+v", c.LastExit, want)
	}
}

// TestSignalWaitsForStart: forwarding takes the lock a start holds, so a
// signal sent while the child starts reaches it instead of being dropped.
func TestSignalWaitsForStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	got := filepath.Join(dir, "got")
	ts := startSupervisor(t, Config{
		Command:       []string{"sh", "-c", `trap 'touch "$0"; exit 0' USR1; echo > "$0.ready"; while :; do sleep 0.05; done`, got},
		RestartPolicy: api.RestartAlways,
	})
	eventually(t, ts.describe, func() bool { _, err := os.Stat(got + ".ready"); return err == nil })
	ts.sup.mu.Lock() // as a start in progress does
	delivered := make(chan bool, 1)
	go func() { delivered <- ts.sup.signal(syscall.SIGUSR1) }()
	select {
	case <-delivered:
		t.Fatal("signal forwarded while a start held the lock")
	case <-time.After(50 * time.Millisecond): // a negative check; no timing asserted
	}
	ts.sup.mu.Unlock()
	if !<-delivered {
		t.Fatal("the signal found no child")
	}
	eventually(t, ts.describe, func() bool { _, err := os.Stat(got); return err == nil })
}

func TestConfigRefusesRestartInWrapMode(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Mode: api.ModeWrap, Command: []string{"true"}, RestartPolicy: api.RestartAlways, Workdir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "restart policy Always needs server mode") {
		t.Errorf("got %v", err)
	}
	_, err = New(Config{LivenessProbe: &api.Probe{Exec: &api.ExecAction{Command: []string{"true"}}}, Workdir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "needs a command") {
		t.Errorf("got %v", err)
	}
}
