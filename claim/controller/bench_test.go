package controller_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sandbox.io/injector/claim"
	"sandbox.io/injector/internal/claimtest"
	"sandbox.io/injector/internal/cpuacct"
	"sandbox.io/injector/runner/api"
)

// BenchmarkClaimToExecute times what a claimant waits for, from before
// creating its SandboxClaim to the result of its first /execute, against a
// real kube-apiserver and etcd and real runners on loopback: sequential
// claims (each from a full pool) and a burst of 20 parallel claims on 20
// warm pods. The cluster's kubelet, scheduler and network are not in the
// way, so this is the controller's and the API server's share of the
// real-cluster numbers of `make bench-claim`. It reports p50 and p99 in
// milliseconds; b.N is the number of rounds. The writes-only runs are the
// floor measured in the same run: each claimant's three dependent API
// writes alone. Beside the latencies, the CPU time per claim (per floor
// for the writes alone) that this process (the controller and the
// claimants) and its children (the API server, etcd, the runners and the
// commands they run) used while the claims ran: with every claim of a
// burst running at once, the burst cannot end before that CPU time, times
// the claims, divided by the machine's cores. BENCH_LOG=1 prints the
// controller's log and its step histograms.
func BenchmarkClaimToExecute(b *testing.B) {
	var logOpts claimtest.Options
	if os.Getenv("BENCH_LOG") != "" {
		logOpts.Controller.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	e := claimtest.Start(b, logOpts)
	e.Node("node-a")
	cl, err := claim.New(e.Config, claim.Config{Transport: claim.TransportDirect})
	if err != nil {
		b.Fatal(err)
	}
	one := func(ctx context.Context, ns, pool string) (time.Duration, error) {
		start := time.Now()
		sb, err := cl.Claim(ctx, claim.Request{Namespace: ns, Pool: pool, Env: map[string]string{"K": "v"}, NoCold: true})
		if err != nil {
			return 0, err
		}
		res, err := sb.Runner().Execute(ctx, api.ExecuteRequest{Argv: []string{"true"}})
		if err != nil {
			return 0, fmt.Errorf("first /execute in %s: %w", sb.Pod, err)
		}
		if res.ExitCode != 0 {
			return 0, fmt.Errorf("first /execute in %s: exit code %d", sb.Pod, res.ExitCode)
		}
		if os.Getenv("BENCH_LOG") != "" {
			fmt.Fprintf(os.Stderr, "claim %s: bound seen after %s, first /execute %s later\n", sb.Claim, sb.Duration.Round(100*time.Microsecond), (time.Since(start) - sb.Duration).Round(100*time.Microsecond))
		}
		return time.Since(start), nil
	}
	// floor is the API server's share alone: each claimant's three
	// dependent writes (the claim's creation, the pod's adoption, the
	// Bound status) as a ConfigMap created and updated twice.
	floor := func(ctx context.Context, ns string) (time.Duration, error) {
		start := time.Now()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "floor-"}, Data: map[string]string{"step": "0"}}
		if err := e.Client.Create(ctx, cm); err != nil {
			return 0, err
		}
		for i := range 2 {
			cm.Data["step"] = fmt.Sprint(i + 1)
			if err := e.Client.Update(ctx, cm); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	for _, burst := range []int{1, 20} {
		b.Run(fmt.Sprintf("writes-only/parallel=%d", burst), func(b *testing.B) {
			var took []time.Duration
			cpu := cpuacct.Account{Tree: os.Getpid()}
			ns := e.Namespace()
			for b.Loop() {
				_ = cpu.During(func() error {
					took = append(took, parallel(b, burst, func() (time.Duration, error) { return floor(b.Context(), ns) })...)
					return nil
				})
			}
			report(b, took)
			reportCPU(b, &cpu, len(took))
		})
	}
	for _, burst := range []int{1, 20} {
		b.Run(fmt.Sprintf("parallel=%d", burst), func(b *testing.B) {
			var took []time.Duration
			cpu := cpuacct.Account{Tree: os.Getpid()}
			for b.Loop() {
				b.StopTimer()
				ns := e.Namespace()
				p := e.Pool(ns, "bench", int32(burst))
				for range burst {
					e.WarmPod(p, "node-a")
				}
				// Let the controller's cache see the pods before the clock
				// starts, as a pool kept full by the agent would be.
				time.Sleep(200 * time.Millisecond)
				b.StartTimer()
				_ = cpu.During(func() error {
					took = append(took, parallel(b, burst, func() (time.Duration, error) { return one(b.Context(), ns, p.Name) })...)
					return nil
				})
			}
			if os.Getenv("BENCH_LOG") != "" {
				mfs, _ := e.Registry.Gather()
				for _, mf := range mfs {
					if strings.Contains(mf.GetName(), "step") || strings.Contains(mf.GetName(), "bind_duration") {
						for _, m := range mf.GetMetric() {
							h := m.GetHistogram()
							fmt.Fprintf(os.Stderr, "%s %v count %d mean %.1f ms\n", mf.GetName(), m.GetLabel(), h.GetSampleCount(), 1000*h.GetSampleSum()/float64(h.GetSampleCount()))
						}
					}
				}
			}
			report(b, took)
			reportCPU(b, &cpu, len(took))
		})
	}
}

// parallel runs n copies of f at once and returns their durations.
func parallel(b *testing.B, n int, f func() (time.Duration, error)) []time.Duration {
	var mu sync.Mutex
	var wg sync.WaitGroup
	took := make([]time.Duration, 0, n)
	for range n {
		wg.Go(func() {
			d, err := f()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				b.Error(err)
				return
			}
			took = append(took, d)
		})
	}
	wg.Wait()
	return took
}

// report adds p50, p99 and max of took, in milliseconds, to the result.
func report(b *testing.B, took []time.Duration) {
	slices.Sort(took)
	if len(took) == 0 {
		return
	}
	b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
	b.ReportMetric(ms(took[(len(took)*99)/100]), "p99-ms")
	b.ReportMetric(ms(took[len(took)-1]), "max-ms")
}

// reportCPU adds the CPU time per claim (or per floor) to the result: in
// all, and of the API server, etcd and the runners (with the commands they
// ran); the rest is this process's (the controller and the claimants).
func reportCPU(b *testing.B, cpu *cpuacct.Account, n int) {
	if n == 0 {
		return
	}
	per := func(d time.Duration) float64 { return ms(d / time.Duration(n)) }
	b.ReportMetric(per(cpu.Total()), "cpu-ms/claim")
	b.ReportMetric(per(cpu.Of("kube-apiserver")), "apiserver-cpu-ms/claim")
	b.ReportMetric(per(cpu.Of("etcd")), "etcd-cpu-ms/claim")
	b.ReportMetric(per(cpu.Of("sandbox-runner")), "runner-cpu-ms/claim")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
