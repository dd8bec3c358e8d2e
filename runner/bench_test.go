package runner

import (
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"sandbox.io/injector/runner/api"
	"sandbox.io/injector/runner/client"
)

func run8(b *testing.B, op func() error) {
	var wg sync.WaitGroup
	work := make(chan struct{}, b.N)
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	b.ResetTimer()
	for range 8 {
		wg.Go(func() {
			for range work {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkExecuteInProcess drives the API in this process (client and
// server), for profiling:
//
//	go test ./runner -run '^$' -bench InProcess -cpuprofile cpu.out
func BenchmarkExecuteInProcess(b *testing.B) {
	r := newTestRunner(b, Config{})
	c := client.New(r.url, "", &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}})
	req := api.ExecuteRequest{Argv: []string{"true"}}
	b.Run("runner", func(b *testing.B) {
		run8(b, func() error { _, err := c.Execute(b.Context(), req); return err })
	})
	b.Run("direct", func(b *testing.B) {
		run8(b, func() error { return exec.Command("true").Run() })
	})
}

// BenchmarkExecuteLatencyInProcess alternates a direct fork-exec and an
// in-process /execute of true and reports both medians.
func BenchmarkExecuteLatencyInProcess(b *testing.B) {
	r := newTestRunner(b, Config{})
	req := api.ExecuteRequest{Argv: []string{"true"}}
	var direct, runner []time.Duration
	for b.Loop() {
		s := time.Now()
		if err := exec.Command("true").Run(); err != nil {
			b.Fatal(err)
		}
		m := time.Now()
		if _, err := r.client.Execute(b.Context(), req); err != nil {
			b.Fatal(err)
		}
		direct, runner = append(direct, m.Sub(s)), append(runner, time.Since(m))
	}
	med := func(d []time.Duration) float64 { slices.Sort(d); return float64(d[len(d)/2].Microseconds()) }
	b.ReportMetric(med(direct), "direct-p50-µs")
	b.ReportMetric(med(runner), "runner-p50-µs")
}
