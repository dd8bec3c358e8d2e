package scale

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// plan is the simulation's size; SANDBOX_SCALE_* override it for a quick
// look (the defaults are issue 12's).
type plan struct {
	fewNodes, manyNodes  int
	smallPool, largePool int
	costClaims           int           // sequential claims per cost measurement
	rates                []float64     // claims/s offered by the ladder
	perStep              time.Duration // each rate's length
	goal                 time.Duration // p99 of a passing rate
	deadline             time.Duration // the whole test, both controllers
}

func planFromEnv(t *testing.T) plan {
	p := plan{
		fewNodes: 10, manyNodes: 100, smallPool: 200, largePool: 2000,
		costClaims: 20, rates: []float64{5, 10, 20, 40, 80, 160}, perStep: 3 * time.Second,
		goal: 100 * time.Millisecond, deadline: 9 * time.Minute,
	}
	ints := map[string]*int{
		"SANDBOX_SCALE_FEW_NODES": &p.fewNodes, "SANDBOX_SCALE_NODES": &p.manyNodes,
		"SANDBOX_SCALE_SMALL_POOL": &p.smallPool, "SANDBOX_SCALE_POOL": &p.largePool,
		"SANDBOX_SCALE_COST_CLAIMS": &p.costClaims,
	}
	for name, ptr := range ints {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				t.Fatalf("%s=%q: want a positive integer", name, v)
			}
			*ptr = n
		}
	}
	return p
}

// TestScale is the scale simulation (make bench-peers-scale). It runs one
// fresh API server per controller, ours first, and prints one table.
func TestScale(t *testing.T) {
	if os.Getenv("SANDBOX_SCALE") != "1" {
		t.Skip("scale simulation: run make bench-peers-scale (SANDBOX_SCALE=1)")
	}
	p := planFromEnv(t)
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(t.Context(), p.deadline)
	defer cancel()
	res := &Result{SmallPool: p.smallPool, LargePool: p.largePool, FewNodes: p.fewNodes, ManyNodes: p.manyNodes, Goal: p.goal}
	for _, side := range sides {
		col := Column{Name: side.name}
		t.Run(side.name, func(t *testing.T) {
			s := StartSim(t)
			// Canceled before the API server stops (cleanups run last
			// first), so that no watch of the harness holds it up.
			sctx, cancel := context.WithCancel(ctx)
			t.Cleanup(cancel)
			go s.RunBinder(sctx)
			col = runSide(sctx, t, s, p, side)
		})
		res.Columns = append(res.Columns, col)
	}
	var b strings.Builder
	if err := res.Write(&b); err != nil {
		t.Fatal(err)
	}
	fmt.Print("\n" + b.String())
	t.Log("\n" + b.String())
}

// runSide measures one controller: costs at (few nodes, small pool), (many
// nodes, small pool) and (many nodes, large pool), then the rate ladder on
// the large pool.
func runSide(ctx context.Context, t *testing.T, s *Sim, p plan, sd side) Column {
	col := Column{Name: sd.name}
	if err := s.AddNodes(ctx, p.fewNodes); err != nil {
		t.Fatal(err)
	}
	pl, err := sd.setUp(ctx, t, s)
	if errors.Is(err, errNotWired) {
		col.Notes = append(col.Notes, "not measured: "+err.Error())
		t.Log(err)
		return col
	}
	if err != nil {
		t.Fatalf("starting %s: %v", sd.name, err)
	}
	cost := func(what string, warm int) Cost {
		t.Helper()
		if err := pl.Size(ctx, warm); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		c0, w0, err := s.snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Sequential(ctx, pl.Claim, p.costClaims); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		// Let the pool refill: its replacements are part of a claim's
		// cost.
		if err := pl.Size(ctx, warm); err != nil {
			t.Fatalf("%s, refilling: %v", what, err)
		}
		c1, w1, err := s.snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c := PerClaim(p.costClaims, c1.Sub(c0), w1.Sub(w0))
		t.Logf("%s: %.1f requests, %.0f bytes, %.1f watch events per claim (%v)", what, c.Requests, c.BytesRead, c.WatchEvents, c.WatchBy)
		return c
	}
	col.FewNodes = cost(fmt.Sprintf("%d nodes, %d warm", p.fewNodes, p.smallPool), p.smallPool)
	if err := s.AddNodes(ctx, p.manyNodes); err != nil {
		t.Fatal(err)
	}
	col.ManyNodes = cost(fmt.Sprintf("%d nodes, %d warm", p.manyNodes, p.smallPool), p.smallPool)
	col.SmallPool = col.ManyNodes
	col.LargePool = cost(fmt.Sprintf("%d nodes, %d warm", p.manyNodes, p.largePool), p.largePool)

	if err := pl.Size(ctx, p.largePool); err != nil {
		t.Fatal(err)
	}
	col.Steps = Ladder(ctx, pl.Claim, p.rates, p.perStep, p.goal, p.largePool-p.costClaims)
	col.Offered, col.Achieved = Sustained(col.Steps)
	// More than one POST /claim to one address is a retry of one claim or
	// two claims on one pod; the fake runner cannot tell, so it is said,
	// not judged (the envtest proofs judge it).
	if twice := s.Runner.ClaimedTwice(); len(twice) > 0 {
		col.Notes = append(col.Notes, fmt.Sprintf("%d simulated runners got more than one POST /claim", len(twice)))
		t.Logf("%s: simulated runners with more than one POST /claim: %v", sd.name, twice)
	}
	if n := s.Dialer.Refused(); n > 0 {
		col.Notes = append(col.Notes, fmt.Sprintf("the simulated network refused %d dials", n))
	}
	return col
}

// snapshot reads the proxy's counts and the API server's watch events.
func (s *Sim) snapshot(ctx context.Context) (Counts, WatchEvents, error) {
	w, err := ScrapeWatchEvents(ctx, s.Admin)
	return s.Proxy.Counts(), w, err
}
