package claimbench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Stats summarizes latency samples.
type Stats struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

// Summarize returns the nearest-rank p50, p90, p99 and max of samples (zero
// Stats for none). samples is not modified.
func Summarize(samples []time.Duration) Stats {
	if len(samples) == 0 {
		return Stats{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return Stats{N: len(s), P50: Percentile(s, 50), P90: Percentile(s, 90), P99: Percentile(s, 99), Max: s[len(s)-1]}
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted samples: the smallest sample with at least p% of the samples at or
// below it. With fewer than 100 samples p99 is therefore the max.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// rank = ceil(p/100 * n), computed in integers to avoid float error
	// (0.99*100 is not exactly 99).
	n := len(sorted)
	rank := (int(p*100)*n + 9999) / 10000
	return sorted[max(1, min(rank, n))-1]
}

// Ratio is a/b, or 0 when b is zero.
func Ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Goals are what `make bench-claim` must show.
type Goals struct {
	SequentialP99 time.Duration // ours, warm sequential: p99 under it
	BurstP99      time.Duration // ours, warm burst: p99 under it
	ColdOverWarm  float64       // ours: cold p50 / warm sequential p50 at least
	PeerOverOurs  float64       // agent-sandbox p99 / ours p99 at least, sequential and burst
}

// DefaultGoals are issue 12's.
var DefaultGoals = Goals{
	SequentialP99: 50 * time.Millisecond,
	BurstP99:      100 * time.Millisecond,
	ColdOverWarm:  10,
	PeerOverOurs:  2,
}

// Report is one run of the side-by-side benchmark.
type Report struct {
	Peer  string // the peer's name and version, e.g. "agent-sandbox v1.0.1"
	Burst int    // parallel claims in each burst

	OursSequential, OursBurst, OursCold []time.Duration
	// OursSequentialRefillAtOnce are ours' sequential claims again, with
	// the node agent refilling the pool at once (agent.pools.refillDelay
	// 0) instead of after the chart's delay: the baseline of that delay in
	// the same run. No row when empty.
	OursSequentialRefillAtOnce []time.Duration
	// OursSequentialSettled are ours' sequential claims made Settle after
	// the pool was full again rather than at once, interleaved with
	// OursSequential: they tell how much the node's work on the refill
	// that ends as the pool is full (its firewall's sync of the new pod's
	// address, the kubelet's status writes) weighs on the claims made at
	// once. No row when empty.
	OursSequentialSettled     []time.Duration
	Settle                    time.Duration
	PeerSequential, PeerBurst []time.Duration
	// FloorSequential and FloorBurst are the API server's share alone,
	// measured at the moments ours were (after the same waits, just before
	// each sequential claim and the burst): each sample is one claimant's
	// three dependent writes (the claim's creation, the pod's adoption, the
	// Bound status) as a ConfigMap created and updated twice. No rows when
	// empty.
	FloorSequential, FloorBurst []time.Duration
	// Notes are printed under the table (e.g. races lost, burst wall time).
	Notes []string
}

// Ratios are the comparisons the goals are about.
type Ratios struct {
	ColdOverWarm                   float64 // ours cold p50 / ours warm sequential p50
	PeerOverOursSeq, PeerOverOursB float64 // peer p99 / ours p99
	FloorOfOursSeq, FloorOfOursB   float64 // API floor p99 / ours p99
}

// Ratios computes the report's ratios.
func (r *Report) Ratios() Ratios {
	seq, burst, cold := Summarize(r.OursSequential), Summarize(r.OursBurst), Summarize(r.OursCold)
	pseq, pburst := Summarize(r.PeerSequential), Summarize(r.PeerBurst)
	return Ratios{
		ColdOverWarm:    Ratio(cold.P50, seq.P50),
		PeerOverOursSeq: Ratio(pseq.P99, seq.P99),
		PeerOverOursB:   Ratio(pburst.P99, burst.P99),
		FloorOfOursSeq:  Ratio(Summarize(r.FloorSequential).P99, seq.P99),
		FloorOfOursB:    Ratio(Summarize(r.FloorBurst).P99, burst.P99),
	}
}

// Write prints the table.
func (r *Report) Write(w io.Writer) error {
	var b strings.Builder
	const format = "%-58s %4s %10s %10s %10s %10s\n"
	fmt.Fprintf(&b, format, "claim latency, one run on the local cluster", "n", "p50", "p90", "p99", "max")
	row := func(name string, d []time.Duration) {
		s := Summarize(d)
		if s.N == 0 {
			fmt.Fprintf(&b, format, name, "0", "-", "-", "-", "-")
			return
		}
		fmt.Fprintf(&b, format, name, fmt.Sprint(s.N), ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max))
	}
	row("ours: warm, sequential (created to first /execute)", r.OursSequential)
	row(fmt.Sprintf("ours: warm, burst of %d (created to first /execute)", r.Burst), r.OursBurst)
	if len(r.OursSequentialRefillAtOnce) > 0 {
		row("ours: warm, sequential, refill at once (refillDelay 0)", r.OursSequentialRefillAtOnce)
	}
	if len(r.OursSequentialSettled) > 0 {
		row(fmt.Sprintf("ours: warm, sequential, %s after the pool is full", r.Settle), r.OursSequentialSettled)
	}
	row("ours: cold (created to first /execute)", r.OursCold)
	row(r.Peer+": warm, sequential (created to Ready)", r.PeerSequential)
	row(fmt.Sprintf("%s: warm, burst of %d (created to Ready)", r.Peer, r.Burst), r.PeerBurst)
	if len(r.FloorSequential) > 0 || len(r.FloorBurst) > 0 {
		row("API floor: 3 dependent writes, sequential", r.FloorSequential)
		row(fmt.Sprintf("API floor: 3 dependent writes, burst of %d", r.Burst), r.FloorBurst)
	}
	x := r.Ratios()
	fmt.Fprintf(&b, "ours cold p50 / warm p50 = %s; %s p99 / ours p99: sequential %s, burst %s\n",
		times(x.ColdOverWarm), r.Peer, times(x.PeerOverOursSeq), times(x.PeerOverOursB))
	if len(r.FloorSequential) > 0 || len(r.FloorBurst) > 0 {
		fmt.Fprintf(&b, "API floor p99 / ours p99: sequential %.0f%%, burst %.0f%%\n", 100*x.FloorOfOursSeq, 100*x.FloorOfOursB)
	}
	if len(r.OursSequentialRefillAtOnce) > 0 {
		seq, atOnce := Summarize(r.OursSequential), Summarize(r.OursSequentialRefillAtOnce)
		fmt.Fprintf(&b, "ours sequential, refill at once / after the delay: p50 %s, p99 %s\n",
			times(Ratio(atOnce.P50, seq.P50)), times(Ratio(atOnce.P99, seq.P99)))
	}
	if len(r.OursSequentialSettled) > 0 {
		seq, settled := Summarize(r.OursSequential), Summarize(r.OursSequentialSettled)
		fmt.Fprintf(&b, "ours sequential, as the pool is full / %s later: p50 %s, p99 %s\n",
			r.Settle, times(Ratio(seq.P50, settled.P50)), times(Ratio(seq.P99, settled.P99)))
	}
	for _, n := range r.Notes {
		fmt.Fprintln(&b, n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Check returns one line per goal not met; none when all are. A series
// without samples fails its goals.
func (r *Report) Check(g Goals) []string {
	var failed []string
	seq, burst := Summarize(r.OursSequential), Summarize(r.OursBurst)
	x := r.Ratios()
	if seq.N == 0 || seq.P99 >= g.SequentialP99 {
		failed = append(failed, fmt.Sprintf("ours warm sequential p99 %s (n=%d), goal under %s", ms(seq.P99), seq.N, ms(g.SequentialP99)))
	}
	if burst.N == 0 || burst.P99 >= g.BurstP99 {
		failed = append(failed, fmt.Sprintf("ours warm burst p99 %s (n=%d), goal under %s", ms(burst.P99), burst.N, ms(g.BurstP99)))
	}
	if x.ColdOverWarm < g.ColdOverWarm {
		failed = append(failed, fmt.Sprintf("ours cold p50 / warm p50 %s, goal at least %s", times(x.ColdOverWarm), times(g.ColdOverWarm)))
	}
	if x.PeerOverOursSeq < g.PeerOverOurs {
		failed = append(failed, fmt.Sprintf("%s p99 / ours p99 sequential %s, goal at least %s", r.Peer, times(x.PeerOverOursSeq), times(g.PeerOverOurs)))
	}
	if x.PeerOverOursB < g.PeerOverOurs {
		failed = append(failed, fmt.Sprintf("%s p99 / ours p99 burst %s, goal at least %s", r.Peer, times(x.PeerOverOursB), times(g.PeerOverOurs)))
	}
	return failed
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func times(f float64) string { return fmt.Sprintf("%.1fx", f) }
