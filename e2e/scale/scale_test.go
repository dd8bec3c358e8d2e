package scale

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sandbox.io/injector/e2e/claimbench"
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
	ctx, cancel := context.WithTimeout(t.Context(), p.deadline)
	defer cancel()
	res := &Result{SmallPool: p.smallPool, LargePool: p.largePool, FewNodes: p.fewNodes, ManyNodes: p.manyNodes, Goal: p.goal}
	for _, side := range sides {
		col := Column{Name: side.name}
		t.Run(side.name, func(t *testing.T) {
			s := StartSim(t)
			go s.RunBinder(ctx)
			col = runSide(ctx, t, s, p, side)
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

// side is one controller under test: setUp starts it on s and returns a
// pool driver.
type side struct {
	name  string
	setUp func(ctx context.Context, t *testing.T, s *Sim) (pools, error)
}

// pools is what runSide needs from a controller: a warm pool it can size,
// and a claim of it.
type pools interface {
	// Size makes the pool hold n warm pods and waits until they are ready.
	Size(ctx context.Context, n int) error
	Claim(ctx context.Context) (time.Duration, error)
}

// sides are the controllers measured, in order. ours.go adds ours first.
var sides = []side{{name: "agent-sandbox " + agentSandboxVersion, setUp: setUpAgentSandbox}}

const agentSandboxVersion = "v1.0.1"

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
	if twice := s.Runner.ClaimedTwice(); len(twice) > 0 {
		t.Errorf("%s: simulated runners claimed twice: %v", sd.name, twice)
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

// agentSandboxPools drives agent-sandbox's controller in the simulation.
type agentSandboxPools struct {
	a    *claimbench.AgentSandbox
	ns   string
	name string
	made bool
}

func setUpAgentSandbox(ctx context.Context, t *testing.T, s *Sim) (pools, error) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "agent-sandbox.kubeconfig")
	if err := os.WriteFile(kubeconfig, s.Proxy.Kubeconfig(), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "agent-sandbox.log"))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = logf.Close() })
	proc, err := claimbench.Start("agent-sandbox-controller", filepath.Join(s.Bin, "agent-sandbox-controller"),
		claimbench.ControllerArgs, []string{"KUBECONFIG=" + kubeconfig}, logf)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := proc.Stop(); err != nil {
			t.Errorf("stopping agent-sandbox's controller: %v", err)
		}
		if t.Failed() {
			tail, _ := os.ReadFile(logf.Name())
			t.Logf("agent-sandbox's log (last 3000 bytes):\n%s", lastBytes(tail, 3000))
		}
	})
	a, err := claimbench.NewAgentSandbox(s.Admin)
	if err != nil {
		return nil, err
	}
	ns := "bench"
	if _, err := s.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	return &agentSandboxPools{a: a, ns: ns, name: "busybox"}, nil
}

// simPodSpec is the warm pods' spec on both sides; kwok never runs it.
func simPodSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "sandbox", Image: "busybox", Command: []string{"sleep", "3600"}}}}
}

func (p *agentSandboxPools) Size(ctx context.Context, n int) error {
	if !p.made {
		if err := p.a.CreatePool(ctx, p.ns, p.name, simPodSpec(), int32(n)); err != nil {
			return err
		}
		p.made = true
	} else if err := p.a.ScalePool(ctx, p.ns, p.name, int32(n)); err != nil {
		return err
	}
	return p.a.WaitReady(ctx, p.ns, p.name, int64(n), 4*time.Minute)
}

func (p *agentSandboxPools) Claim(ctx context.Context) (time.Duration, error) {
	_, d, err := p.a.Claim(ctx, p.ns, p.name, time.Minute)
	return d, err
}
