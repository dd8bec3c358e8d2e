package inject

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"sandbox.io/injector/claim"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner/api"
)

// TestBenchClaim measures, on the local cluster, claim-to-first-/execute of
// warm pods (>= 50 claims, sequential) beside creating a cold injected pod
// and waiting for its first /execute (same image, already pulled), and a
// burst of 20 parallel claimers. It prints a table and checks the goals:
// warm p99 under 100 ms and cold/warm at least 10x at p50. Run it with
// `make bench-claim` (E2E_BENCH=1).
func TestBenchClaim(t *testing.T) {
	if os.Getenv("E2E_BENCH") != "1" {
		t.Skip("benchmark: run make bench-claim")
	}
	x := requireE2E(t)
	ns := x.namespace(t, "bench-claim", nil)
	p := x.createPool(t, ns, "bench", 0)
	cl, err := claim.New(x.rest, claim.Config{Transport: claim.TransportDirect})
	if err != nil {
		t.Fatal(err)
	}
	opts := claim.Options{NoCold: true, Grace: -1, Env: map[string]string{"K": "v"}}

	// Warm: rounds of 10 warm pods, each claimed and driven once.
	const rounds, perRound = 5, 10
	var (
		warm                     []time.Duration
		find, adopt, hand, first []time.Duration
	)
	for range rounds {
		x.warmPods(t, p, perRound)
		for range perRound {
			start := time.Now()
			sb, err := cl.Claim(t.Context(), ns, p.Name, opts)
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			res, err := sb.Runner().Execute(t.Context(), api.ExecuteRequest{Argv: []string{"true"}})
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("first execute: %v %+v", err, res)
			}
			warm = append(warm, time.Since(start))
			first = append(first, time.Since(t0))
			find, adopt, hand = append(find, sb.Timings.Find), append(adopt, sb.Timings.Adopt), append(hand, sb.Timings.Hand)
			if err := cl.Release(t.Context(), ns, sb.Pod); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The same through the API server's pod proxy (sandboxctl's default,
	// from outside the cluster).
	proxied, err := claim.New(x.rest, claim.Config{Transport: claim.TransportProxy})
	if err != nil {
		t.Fatal(err)
	}
	var viaProxy []time.Duration
	x.warmPods(t, p, perRound)
	for range perRound {
		start := time.Now()
		sb, err := proxied.Claim(t.Context(), ns, p.Name, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := sb.Runner().Execute(t.Context(), api.ExecuteRequest{Argv: []string{"true"}}); err != nil || res.ExitCode != 0 {
			t.Fatalf("first execute through the proxy: %v %+v", err, res)
		}
		viaProxy = append(viaProxy, time.Since(start))
		if err := proxied.Release(t.Context(), ns, sb.Pod); err != nil {
			t.Fatal(err)
		}
	}

	// Cold: create an injected pod of the same template, wait for its
	// first /execute. The client polls every 10 ms, so it gets the same
	// generous rate limit as the claimer (client-go's default 5/s would
	// add up to 200 ms to every cold sample).
	fast := rest.CopyConfig(x.rest)
	fast.QPS, fast.Burst = claim.DefaultQPS, claim.DefaultBurst
	kube, err := kubernetes.NewForConfig(fast)
	if err != nil {
		t.Fatal(err)
	}
	const colds = 8
	var cold []time.Duration
	for range colds {
		start := time.Now()
		created, err := kube.CoreV1().Pods(ns).Create(t.Context(), pool.ColdPod(p, "bench", time.Now()), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if time.Since(start) > 2*time.Minute {
				t.Fatalf("cold pod %s: no /execute answer in 2m", created.Name)
			}
			pod, err := kube.CoreV1().Pods(ns).Get(t.Context(), created.Name, metav1.GetOptions{})
			if err == nil && pod.Status.PodIP != "" {
				rc := runnerClient(pod, testToken)
				if res, err := rc.Execute(t.Context(), api.ExecuteRequest{Argv: []string{"true"}}); err == nil && res.ExitCode == 0 {
					break
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		cold = append(cold, time.Since(start))
		_ = x.kube.CoreV1().Pods(ns).Delete(t.Context(), created.Name, metav1.DeleteOptions{})
	}

	// Burst: 20 claimers at once over 20 warm pods.
	const burst = 20
	x.warmPods(t, p, burst)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		burstLat []time.Duration
		lost     int
	)
	gate := make(chan struct{})
	for range burst {
		wg.Go(func() {
			<-gate
			start := time.Now()
			sb, err := cl.Claim(t.Context(), ns, p.Name, opts)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := sb.Runner().Execute(t.Context(), api.ExecuteRequest{Argv: []string{"true"}}); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			burstLat = append(burstLat, time.Since(start))
			lost += sb.Lost
			mu.Unlock()
		})
	}
	burstStart := time.Now()
	close(gate)
	wg.Wait()
	burstWall := time.Since(burstStart)

	q := func(d []time.Duration, f float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		i := int(f*float64(len(s))+0.5) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-44s %6s %10s %10s %10s\n", "claim to first /execute (local cluster)", "n", "p50", "p99", "max")
	row := func(name string, d []time.Duration) {
		fmt.Fprintf(&b, "%-44s %6d %10s %10s %10s\n", name, len(d), ms(q(d, .5)), ms(q(d, .99)), ms(q(d, 1)))
	}
	row("warm claim (sequential, direct)", warm)
	row("  of which: find (get pool, list, probe)", find)
	row("  of which: adopt (conditional update)", adopt)
	row("  of which: hand (token Secret, /claim)", hand)
	row("  of which: first /execute", first)
	row("warm claim (sequential, API server proxy)", viaProxy)
	row("cold injected pod: create to first /execute", cold)
	row(fmt.Sprintf("burst: %d parallel claimers", burst), burstLat)
	ratio50 := float64(q(cold, .5)) / float64(q(warm, .5))
	ratio99 := float64(q(cold, .5)) / float64(q(warm, .99))
	fmt.Fprintf(&b, "cold p50 / warm p50 = %.1fx; cold p50 / warm p99 = %.1fx; burst wall %s, %d races lost\n",
		ratio50, ratio99, ms(burstWall), lost)
	fmt.Print(b.String())
	t.Log(b.String())

	if q(warm, .99) > 100*time.Millisecond {
		t.Errorf("warm claim p99 %s, goal under 100 ms", q(warm, .99))
	}
	if ratio50 < 10 {
		t.Errorf("cold/warm at p50 is %.1fx, goal at least 10x", ratio50)
	}
}
