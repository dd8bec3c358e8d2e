package scale

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fixed returns a Claimer whose i-th call (from 1) reports latency(i).
func fixed(latency func(i int64) (time.Duration, error)) (Claimer, *atomic.Int64) {
	var calls atomic.Int64
	return func(context.Context) (time.Duration, error) { return latency(calls.Add(1)) }, &calls
}

func TestLadderStopsAtTheFirstFailingRate(t *testing.T) {
	// Claims 1..3 (rate 10/s and 20/s for 100 ms: 1 + 2) are fast, the
	// rest slow: the 40/s step fails and 80/s never runs.
	claim, calls := fixed(func(i int64) (time.Duration, error) {
		if i <= 3 {
			return 5 * time.Millisecond, nil
		}
		return 150 * time.Millisecond, nil
	})
	steps := Ladder(t.Context(), claim, []float64{10, 20, 40, 80}, 100*time.Millisecond, 100*time.Millisecond, 1000)
	if len(steps) != 3 {
		t.Fatalf("%d steps, want 3: %+v", len(steps), steps)
	}
	if calls.Load() != 1+2+4 {
		t.Fatalf("%d claims, want 7", calls.Load())
	}
	if !steps[0].Pass || !steps[1].Pass || steps[2].Pass {
		t.Fatalf("pass %v %v %v, want true true false", steps[0].Pass, steps[1].Pass, steps[2].Pass)
	}
	if offered, _ := Sustained(steps); offered != 20 {
		t.Fatalf("sustained %v, want 20", offered)
	}
}

func TestLadderFailsAStepWithAnError(t *testing.T) {
	claim, _ := fixed(func(i int64) (time.Duration, error) {
		if i == 2 {
			return 0, errors.New("no warm pod")
		}
		return time.Millisecond, nil
	})
	steps := Ladder(t.Context(), claim, []float64{10, 20, 40}, 100*time.Millisecond, time.Second, 1000)
	if len(steps) != 2 || steps[1].Pass || steps[1].Errors != 1 {
		t.Fatalf("steps %+v, want the second failing with one error", steps)
	}
	if offered, _ := Sustained(steps); offered != 10 {
		t.Fatalf("sustained %v, want 10", offered)
	}
}

func TestLadderKeepsToTheBudget(t *testing.T) {
	claim, calls := fixed(func(int64) (time.Duration, error) { return time.Millisecond, nil })
	steps := Ladder(t.Context(), claim, []float64{10, 20, 40}, 100*time.Millisecond, time.Second, 5)
	if len(steps) != 2 || calls.Load() != 3 {
		t.Fatalf("%d steps and %d claims, want 2 and 3 (the 40/s step needs 4 more than the budget of 5)", len(steps), calls.Load())
	}
	if offered, _ := Sustained(nil); offered != 0 {
		t.Fatal("sustained of nothing is not 0")
	}
}

func TestSequentialStopsAtTheFirstError(t *testing.T) {
	claim, _ := fixed(func(i int64) (time.Duration, error) {
		if i == 3 {
			return 0, errors.New("boom")
		}
		return time.Duration(i) * time.Millisecond, nil
	})
	got, err := Sequential(t.Context(), claim, 5)
	if err == nil || !strings.Contains(err.Error(), "claim 3 of 5: boom") || len(got) != 2 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestPerClaim(t *testing.T) {
	c := PerClaim(10, Counts{Requests: 30, BytesRead: 20480}, WatchEvents{"pods": 40, "nodes": 0, "sandboxclaims.sandbox.io": 30})
	if c.Claims != 10 || c.Requests != 3 || c.BytesRead != 2048 || c.WatchEvents != 7 {
		t.Fatalf("cost %+v", c)
	}
	if _, ok := c.WatchBy["nodes"]; ok || c.WatchBy["pods"] != 4 {
		t.Fatalf("per resource %v", c.WatchBy)
	}
	if z := PerClaim(0, Counts{Requests: 1}, nil); z.Claims != 0 || z.Requests != 0 || z.WatchBy != nil {
		t.Fatal("cost of no claims is not zero")
	}
}

func TestResultWrite(t *testing.T) {
	r := &Result{SmallPool: 200, LargePool: 2000, FewNodes: 10, ManyNodes: 100, Goal: 100 * time.Millisecond,
		Columns: []Column{
			{Name: "ours", Offered: 80, Achieved: 79.5,
				SmallPool: Cost{Claims: 10, Requests: 3, BytesRead: 4096}, LargePool: Cost{Claims: 10, Requests: 3, BytesRead: 4096},
				FewNodes: Cost{Claims: 10, WatchEvents: 12}, ManyNodes: Cost{Claims: 10, WatchEvents: 12},
				Steps: []Step{{Rate: 80, Claims: 240, Achieved: 79.5, Pass: true}}},
			{Name: "agent-sandbox v1.0.1", Notes: []string{"stopped early"}},
		}}
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"claims/s sustained at p99 < 100 ms (100 nodes, 2000 warm)",
		"80 (79.5 done)            none passed",
		"API requests per claim, 2000 warm pods",
		"bytes read per claim, 200 warm pods",
		"4.0 KiB",
		"watch events sent per claim, 100 nodes",
		"ours at 80/s: 240 claims, 0 errors",
		"agent-sandbox v1.0.1: stopped early",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
