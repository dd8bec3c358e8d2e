package scale

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"sandbox.io/injector/e2e/claimbench"
)

// Claimer makes one claim and returns the time from its creation to bound
// (ours: phase Bound; agent-sandbox: condition Ready).
type Claimer func(ctx context.Context) (time.Duration, error)

// Sequential runs n claims one after another.
func Sequential(ctx context.Context, claim Claimer, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for i := range n {
		d, err := claim(ctx)
		if err != nil {
			return out, fmt.Errorf("claim %d of %d: %w", i+1, n, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// Step is one rate of a Ladder.
type Step struct {
	Rate     float64 // claims/s offered
	Claims   int     // claims started
	Errors   int
	Stats    claimbench.Stats
	Achieved float64 // claims completed per second of the step's wall time
	Pass     bool    // no error and p99 under the goal
}

// Ladder offers claims at each rate in turn (open loop: one claim started
// every 1/rate, rate*per of them, whatever the earlier ones are doing) and
// stops after the first rate that fails (an error, or p99 at or over goal)
// or when the next step would start more than budget claims in all. It
// returns the steps run; Sustained reads the answer.
func Ladder(ctx context.Context, claim Claimer, rates []float64, per time.Duration, goal time.Duration, budget int) []Step {
	var steps []Step
	used := 0
	for _, rate := range rates {
		n := max(1, int(math.Round(rate*per.Seconds())))
		if used+n > budget {
			break
		}
		used += n
		step := runStep(ctx, claim, rate, n)
		step.Pass = step.Errors == 0 && step.Stats.N > 0 && step.Stats.P99 < goal
		steps = append(steps, step)
		if !step.Pass || ctx.Err() != nil {
			break
		}
	}
	return steps
}

func runStep(ctx context.Context, claim Claimer, rate float64, n int) Step {
	interval := time.Duration(float64(time.Second) / rate)
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs int
		wg   sync.WaitGroup
	)
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		wg.Go(func() {
			d, err := claim(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				return
			}
			lat = append(lat, d)
		})
	}
	wg.Wait()
	wall := time.Since(start)
	return Step{Rate: rate, Claims: n, Errors: errs, Stats: claimbench.Summarize(lat), Achieved: float64(len(lat)) / wall.Seconds()}
}

// Sustained is the highest rate of steps that passed (0 for none), and the
// rate achieved at it.
func Sustained(steps []Step) (offered, achieved float64) {
	for _, s := range steps {
		if s.Pass && s.Rate > offered {
			offered, achieved = s.Rate, s.Achieved
		}
	}
	return offered, achieved
}

// Cost is what claims cost the API server, per claim.
type Cost struct {
	Claims      int
	Requests    float64     // requests by the controller (through the proxy)
	BytesRead   float64     // response bytes the controller read
	WatchEvents float64     // events the API server sent to every watcher
	WatchBy     WatchEvents // the same per resource, per claim
}

// PerClaim divides the differences of proxy counts and watch events over
// n claims.
func PerClaim(n int, c Counts, w WatchEvents) Cost {
	if n <= 0 {
		return Cost{}
	}
	by := WatchEvents{}
	for k, v := range w {
		if v != 0 {
			by[k] = v / float64(n)
		}
	}
	return Cost{
		Claims: n, Requests: float64(c.Requests) / float64(n), BytesRead: float64(c.BytesRead) / float64(n),
		WatchEvents: w.Total() / float64(n), WatchBy: by,
	}
}

// Column is one controller's results.
type Column struct {
	Name                 string
	Offered, Achieved    float64 // claims/s sustained at p99 under the goal
	Steps                []Step
	SmallPool, LargePool Cost // at Result.SmallPool and LargePool warm pods
	FewNodes, ManyNodes  Cost // at Result.FewNodes and ManyNodes nodes
	Notes                []string
}

// Result is the whole simulation's table.
type Result struct {
	SmallPool, LargePool int // warm pods
	FewNodes, ManyNodes  int // nodes
	Goal                 time.Duration
	Columns              []Column
}

// Write prints the table, one column per controller.
func (r *Result) Write(w io.Writer) error {
	var b strings.Builder
	head := fmt.Sprintf("%-56s", "scale simulation (kwok, real kube-apiserver + etcd)")
	for _, c := range r.Columns {
		head += fmt.Sprintf(" %22s", c.Name)
	}
	fmt.Fprintln(&b, head)
	row := func(name string, f func(c Column) string) {
		line := fmt.Sprintf("%-56s", name)
		for _, c := range r.Columns {
			line += fmt.Sprintf(" %22s", f(c))
		}
		fmt.Fprintln(&b, line)
	}
	goal := fmt.Sprintf("%d ms", r.Goal.Milliseconds())
	row(fmt.Sprintf("claims/s sustained at p99 < %s (%d nodes, %d warm)", goal, r.ManyNodes, r.LargePool), func(c Column) string {
		if c.Offered == 0 {
			return "none passed"
		}
		return fmt.Sprintf("%.0f (%.1f done)", c.Offered, c.Achieved)
	})
	row(fmt.Sprintf("API requests per claim, %d warm pods", r.SmallPool), func(c Column) string { return num(c.SmallPool.Requests, c.SmallPool.Claims) })
	row(fmt.Sprintf("API requests per claim, %d warm pods", r.LargePool), func(c Column) string { return num(c.LargePool.Requests, c.LargePool.Claims) })
	row(fmt.Sprintf("bytes read per claim, %d warm pods", r.SmallPool), func(c Column) string { return kib(c.SmallPool.BytesRead, c.SmallPool.Claims) })
	row(fmt.Sprintf("bytes read per claim, %d warm pods", r.LargePool), func(c Column) string { return kib(c.LargePool.BytesRead, c.LargePool.Claims) })
	row(fmt.Sprintf("watch events sent per claim, %d nodes", r.FewNodes), func(c Column) string { return num(c.FewNodes.WatchEvents, c.FewNodes.Claims) })
	row(fmt.Sprintf("watch events sent per claim, %d nodes", r.ManyNodes), func(c Column) string { return num(c.ManyNodes.WatchEvents, c.ManyNodes.Claims) })
	for _, c := range r.Columns {
		for _, s := range c.Steps {
			fmt.Fprintf(&b, "  %s at %.0f/s: %d claims, %d errors, p50 %.1f ms, p99 %.1f ms, %.1f/s done\n",
				c.Name, s.Rate, s.Claims, s.Errors, msf(s.Stats.P50), msf(s.Stats.P99), s.Achieved)
		}
		for _, n := range c.Notes {
			fmt.Fprintf(&b, "  %s: %s\n", c.Name, n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func num(v float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

func kib(v float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f KiB", v/1024)
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
