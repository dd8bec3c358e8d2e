package prepuller

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

// TestSyncAcrossContainerdRestart kills a real containerd in the middle of a
// pull, as a crash or an upgrade of the node's runtime would: the pull is
// reported failed with the runtime's error and retried after its backoff;
// while the runtime is down Sync says so and forgets nothing; once it is
// back, the Puller's own connection (Dial, as the agent makes it) reconnects
// and the image is pulled.
func TestSyncAcrossContainerdRestart(t *testing.T) {
	t.Parallel()
	reg := newTestRegistry(t)
	c := startContainerd(t, reg.host)
	// Not under public/, whose pulls wait for company.
	present := Image{Ref: reg.push(t, "kept/app:v1")}
	slow := Image{Ref: reg.push(t, "slow/app:v1")}

	conn, err := Dial(c.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	clock := clocktesting.NewFakeClock(t0)
	p, err := New(runtimeapi.NewImageServiceClient(conn), WithBackoff(time.Minute, time.Hour, 0), WithClock(clock),
		WithRegisterer(prometheus.NewPedanticRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(syncCtx(t), []Image{present}); err != nil {
		t.Fatal(err)
	}
	desired := []Image{present, slow}

	// The runtime dies while the slow image's manifest is being fetched.
	reg.holdSlow.Store(true)
	done := make(chan error, 1)
	go func() { done <- p.Sync(syncCtx(t), desired) }()
	select {
	case <-reg.slowArrived:
	case err := <-done:
		t.Fatalf("Sync returned before its pull reached the registry: %v", err)
	}
	c.Kill(t)
	if err := <-done; err != nil {
		t.Fatalf("Sync whose pull the runtime's death cut short = %v, want nil (the pull's failure is in the status)", err)
	}
	s := statusOf(t, p, slow.Ref)
	if s.State != StateFailed || s.Attempts != 1 || s.LastError == "" {
		t.Fatalf("status of the pull cut short = %+v, want failed once with the runtime's error", s)
	}
	if want := clock.Now().Add(time.Minute); !s.NextRetry.Equal(want) {
		t.Errorf("next retry = %s, want %s (the base backoff)", s.NextRetry, want)
	}
	if got := testutil.ToFloat64(p.metrics.pulls.WithLabelValues(ResultFailure)); got != 1 {
		t.Errorf("pulls_total{result=failure} = %g, want 1", got)
	}
	t.Logf("the pull cut short: %s", s.LastError)

	// While the runtime is down: Sync fails saying so, and what the Puller
	// knew stays (the status the agent publishes does not go blank).
	if err := p.Sync(syncCtx(t), desired); err == nil || !strings.Contains(err.Error(), "listing images through the CRI") {
		t.Errorf("Sync with the runtime down = %v, want an error saying the listing failed", err)
	}
	if s := statusOf(t, p, present.Ref); s.State != StatePresent {
		t.Errorf("status of %s with the runtime down = %+v, want present still", present.Ref, s)
	}
	if s := statusOf(t, p, slow.Ref); s.State != StateFailed || s.Attempts != 1 {
		t.Errorf("status of %s with the runtime down = %+v, want failed once still", slow.Ref, s)
	}

	// Back, with the registry answering: after the backoff the image is
	// pulled through the same connection.
	reg.holdSlow.Store(false)
	c.Restart(t)
	clock.SetTime(clock.Now().Add(time.Minute))
	back := time.Now()
	if err := p.Sync(syncCtx(t), desired); err != nil {
		t.Fatalf("Sync after the runtime came back: %v", err)
	}
	t.Logf("the first Sync after the restart took %s", time.Since(back).Round(time.Millisecond))
	if s := statusOf(t, p, slow.Ref); s.State != StatePresent || s.Attempts != 0 || s.LastError != "" {
		t.Errorf("status after the restart = %+v, want present with the failure forgotten", s)
	}
	for _, img := range desired {
		if !presentInRuntime(t, c, img.Ref) {
			t.Errorf("%s is not in the restarted runtime", img.Ref)
		}
	}
	if got := testutil.ToFloat64(p.metrics.pulls.WithLabelValues(ResultSuccess)); got != 2 {
		t.Errorf("pulls_total{result=success} = %g, want 2", got)
	}
}
