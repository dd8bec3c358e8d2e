package claimbench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func msList(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	fifty := hundred[:50]
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", msList(7), 50, 7 * time.Millisecond},
		{"one p99", msList(7), 99, 7 * time.Millisecond},
		{"100 p90", hundred, 90, 90 * time.Millisecond},
		{"two p50 is the lower", msList(1, 2), 50, time.Millisecond},
		{"three p50 is the middle", msList(1, 2, 3), 50, 2 * time.Millisecond},
		{"100 p50", hundred, 50, 50 * time.Millisecond},
		{"100 p99", hundred, 99, 99 * time.Millisecond},
		{"100 p100", hundred, 100, 100 * time.Millisecond},
		{"50 p99 is the max", fifty, 99, 50 * time.Millisecond},
		{"50 p50", fifty, 50, 25 * time.Millisecond},
		{"20 p99 is the max", hundred[:20], 99, 20 * time.Millisecond},
		{"200 p99", append(append([]time.Duration{}, hundred...), hundred...)[:200], 99, 98 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Fatalf("Percentile(p%v of %d) = %s, want %s", tc.p, len(tc.sorted), got, tc.want)
			}
		})
	}
}

func TestSummarizeSortsACopy(t *testing.T) {
	in := msList(30, 10, 20)
	s := Summarize(in)
	if s != (Stats{N: 3, P50: 20 * time.Millisecond, P90: 30 * time.Millisecond, P99: 30 * time.Millisecond, Max: 30 * time.Millisecond}) {
		t.Fatalf("Summarize = %+v", s)
	}
	if in[0] != 30*time.Millisecond {
		t.Fatalf("Summarize sorted its input: %v", in)
	}
	if (Summarize(nil) != Stats{}) {
		t.Fatal("Summarize(nil) is not zero")
	}
}

func TestRatio(t *testing.T) {
	if got := Ratio(300*time.Millisecond, 10*time.Millisecond); got != 30 {
		t.Fatalf("Ratio = %v", got)
	}
	if got := Ratio(time.Second, 0); got != 0 {
		t.Fatalf("Ratio by zero = %v", got)
	}
}

func goodReport() *Report {
	return &Report{
		Peer: "agent-sandbox v1.0.1", Burst: 3,
		OursSequential: msList(10, 12, 20),
		OursBurst:      msList(30, 40, 60),
		OursCold:       msList(900, 1000, 1100),
		PeerSequential: msList(80, 90, 100),
		PeerBurst:      msList(150, 200, 300),
	}
}

func TestCheckPassesAReportThatMeetsTheGoals(t *testing.T) {
	r := goodReport()
	if failed := r.Check(DefaultGoals); len(failed) != 0 {
		t.Fatalf("goals failed: %q", failed)
	}
	x := r.Ratios()
	if x.ColdOverWarm != 1000.0/12 || x.PeerOverOursSeq != 5 || x.PeerOverOursB != 5 {
		t.Fatalf("ratios %+v", x)
	}
}

func TestCheckNamesEachGoalMissed(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Report)
		want   string
	}{
		{"sequential p99 at the goal", func(r *Report) { r.OursSequential = msList(10, 50) }, "warm sequential p99 50.0 ms"},
		{"burst p99 over", func(r *Report) { r.OursBurst = msList(30, 101) }, "warm burst p99 101.0 ms"},
		{"cold too close", func(r *Report) { r.OursCold = msList(100) }, "cold p50 / warm p50 8.3x"},
		{"peer sequential too close", func(r *Report) { r.PeerSequential = msList(39) }, "p99 / ours p99 sequential 1.9x"},
		{"peer burst too close", func(r *Report) { r.PeerBurst = msList(119) }, "p99 / ours p99 burst 2.0x"},
		{"no sequential samples", func(r *Report) { r.OursSequential = nil }, "warm sequential p99 0.0 ms (n=0)"},
		{"no peer samples", func(r *Report) { r.PeerBurst = nil }, "p99 / ours p99 burst 0.0x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := goodReport()
			tc.mutate(r)
			failed := r.Check(DefaultGoals)
			if len(failed) == 0 {
				t.Fatal("no goal failed")
			}
			if !strings.Contains(strings.Join(failed, "\n"), tc.want) {
				t.Fatalf("failures %q do not say %q", failed, tc.want)
			}
		})
	}
}

func TestWritePrintsEveryRowAndTheRatios(t *testing.T) {
	r := goodReport()
	r.OursCold = nil
	r.Notes = []string{"burst: 2 races lost"}
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"ours: warm, sequential (created to first /execute)            3    12.0 ms    20.0 ms    20.0 ms",
		"ours: warm, burst of 3 (created to first /execute)",
		"ours: cold (created to first /execute)                        0          -          -          -",
		"agent-sandbox v1.0.1: warm, sequential (created to Ready)",
		"agent-sandbox v1.0.1: warm, burst of 3 (created to Ready)",
		"ours cold p50 / warm p50 = 0.0x; agent-sandbox v1.0.1 p99 / ours p99: sequential 5.0x, burst 5.0x",
		"burst: 2 races lost",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "API floor") {
		t.Errorf("a report without floor samples prints floor rows:\n%s", out)
	}
	if strings.Contains(out, "refill at once") {
		t.Errorf("a report without refill-at-once samples prints its row:\n%s", out)
	}
	if strings.Contains(out, "after the pool is full") {
		t.Errorf("a report without settled samples prints their row:\n%s", out)
	}
}

func TestWritePrintsTheSettledClaims(t *testing.T) {
	r := goodReport()
	r.OursSequential = msList(10, 12, 60)
	r.PeerSequential = msList(80, 90, 200)
	r.OursSequentialSettled = msList(5, 6, 8)
	r.Settle = 300 * time.Millisecond
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	seq := Summarize(r.OursSequential)
	for _, want := range []string{
		"ours: warm, sequential, 300ms after the pool is full          3     6.0 ms     8.0 ms     8.0 ms     8.0 ms",
		fmt.Sprintf("ours sequential, as the pool is full / 300ms later: p50 %s, p99 %s", times(Ratio(seq.P50, 6*time.Millisecond)), times(Ratio(seq.P99, 8*time.Millisecond))),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// The goals stay on the claims made as the pool is full.
	if failed := r.Check(DefaultGoals); len(failed) != 1 || !strings.Contains(failed[0], "ours warm sequential p99 60.0 ms") {
		t.Errorf("Check: %q, want only the sequential goal missed (60 ms), the settled claims' 8 ms aside", failed)
	}
}

func TestWritePrintsTheRefillBaseline(t *testing.T) {
	r := goodReport()
	r.OursSequentialRefillAtOnce = msList(15, 18, 40)
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"ours: warm, sequential, refill at once (refillDelay 0)        3    18.0 ms    40.0 ms    40.0 ms    40.0 ms",
		"ours sequential, refill at once / after the delay: p50 1.5x, p99 2.0x",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestWritePrintsTheFloorBesideOurs(t *testing.T) {
	r := goodReport()
	r.FloorSequential = msList(4, 5, 10)
	r.FloorBurst = msList(15, 20, 45)
	var b strings.Builder
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"API floor: 3 dependent writes, sequential                     3     5.0 ms    10.0 ms    10.0 ms    10.0 ms",
		"API floor: 3 dependent writes, burst of 3                     3    20.0 ms    45.0 ms    45.0 ms    45.0 ms",
		"API floor p99 / ours p99: sequential 50%, burst 75%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// The floor is beside the goals, not one of them.
	if failed := r.Check(DefaultGoals); len(failed) != 0 {
		t.Errorf("goals failed with a floor: %q", failed)
	}
}

func TestBurstRunsEveryClaimAndReportsAnError(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	got, err := Burst(t.Context(), 5, func(context.Context) (time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 3 {
			return 0, errors.New("no sandbox")
		}
		return time.Millisecond, nil
	})
	if calls != 5 || len(got) != 4 {
		t.Fatalf("%d calls, %d samples; want 5 and 4", calls, len(got))
	}
	if err == nil || !strings.Contains(err.Error(), "burst of 5 claims: no sandbox") {
		t.Fatalf("error %v", err)
	}
}
