package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"sandbox.io/injector/runner/api"
	"sandbox.io/injector/runner/client"
)

// The benchmarks compare the runner binary with what it wraps, in the same
// run: a direct fork-exec of true from Go, and a plain file copy. The machine
// is shared, so the latency and throughput benchmarks interleave the two
// sides (one direct, one through the runner, and so on) so that both see the
// same load. `make bench-runner` prints the table with the ratios.
//
//	go test ./cmd/sandbox-runner -run '^$' -bench 'True' -benchtime 2000x
//	go test ./cmd/sandbox-runner -run '^$' -bench 'Copy|load' -benchtime 5x

func quantile(l []time.Duration, p float64) float64 {
	slices.Sort(l)
	return float64(l[min(len(l)-1, int(p*float64(len(l))))].Nanoseconds()) / 1e3
}

func forkExecTrue() error { return exec.Command("true").Run() }

func benchRunner(b *testing.B) *client.Client {
	b.Helper()
	p := startCmdLog(b, exec.Command(runnerBin, "run", "--listen=127.0.0.1:0"), false)
	return client.New("http://"+p.addr, "", &httpClient8)
}

func executeTrue(b *testing.B, c *client.Client) func() error {
	req := api.ExecuteRequest{Argv: []string{"true"}}
	return func() error {
		res, err := c.Execute(b.Context(), req)
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("true exited %d: %s", res.ExitCode, res.Error)
		}
		return err
	}
}

// BenchmarkExecuteTrueLatency alternates a direct fork-exec of true and an
// /execute of true; each b.N counts one of each. It reports the p50 and p99
// of both and the p50 overhead of the runner.
func BenchmarkExecuteTrueLatency(b *testing.B) {
	run := executeTrue(b, benchRunner(b))
	if err := run(); err != nil { // warm the connection
		b.Fatal(err)
	}
	direct := make([]time.Duration, 0, b.N)
	runner := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if err := forkExecTrue(); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := run(); err != nil {
			b.Fatal(err)
		}
		direct = append(direct, mid.Sub(start))
		runner = append(runner, time.Since(mid))
	}
	dp50, rp50 := quantile(direct, 0.5), quantile(runner, 0.5)
	b.ReportMetric(dp50, "direct-p50-µs")
	b.ReportMetric(quantile(direct, 0.99), "direct-p99-µs")
	b.ReportMetric(rp50, "runner-p50-µs")
	b.ReportMetric(quantile(runner, 0.99), "runner-p99-µs")
	b.ReportMetric(rp50-dp50, "overhead-p50-µs")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkExecuteTrue8Clients runs pairs of rounds of 8 concurrent
// clients: a round of direct fork-execs and a round of /execute, in
// alternating order so that a change of load hits both sides alike; b.N
// counts operations of each kind. It reports both throughputs, their ratio
// over the whole run, and the median of the per-pair ratios (robust to load
// bursts from other programs on the machine).
func BenchmarkExecuteTrue8Clients(b *testing.B) {
	const clients, round = 8, 64
	run := executeTrue(b, benchRunner(b))
	var directTime, runnerTime time.Duration
	var ratios []float64
	phase := func(n int, op func() error) time.Duration {
		work := make(chan struct{}, n)
		for range n {
			work <- struct{}{}
		}
		close(work)
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
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
		return time.Since(start)
	}
	b.ResetTimer()
	for done, i := 0, 0; done < b.N; done, i = done+round, i+1 {
		n := min(round, b.N-done)
		var d, r time.Duration
		if i%2 == 0 {
			d = phase(n, forkExecTrue)
			r = phase(n, run)
		} else {
			r = phase(n, run)
			d = phase(n, forkExecTrue)
		}
		directTime, runnerTime = directTime+d, runnerTime+r
		ratios = append(ratios, d.Seconds()/r.Seconds())
	}
	direct := float64(b.N) / directTime.Seconds()
	runner := float64(b.N) / runnerTime.Seconds()
	slices.Sort(ratios)
	b.ReportMetric(direct, "direct-ops/s")
	b.ReportMetric(runner, "runner-ops/s")
	b.ReportMetric(runner/direct, "ratio")
	b.ReportMetric(ratios[len(ratios)/2], "median-ratio")
	b.ReportMetric(0, "ns/op")
}

const fileSize = 64 << 20

func benchFile(b *testing.B) (dir, src string) {
	b.Helper()
	dir = b.TempDir()
	src = filepath.Join(dir, "src")
	if err := os.WriteFile(src, bytes.Repeat([]byte("0123456789abcdef"), fileSize/16), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir, src
}

// onlyWriter and onlyReader hide ReadFrom/WriteTo so io.Copy moves the bytes
// through a buffer, as a server and client do, instead of copy_file_range.
type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }

func BenchmarkPlainFileCopy(b *testing.B) {
	dir, src := benchFile(b)
	b.SetBytes(fileSize)
	for b.Loop() {
		in, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dir, "dst"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(onlyWriter{out}, onlyReader{in}); err != nil {
			b.Fatal(err)
		}
		in.Close()
		out.Close()
	}
}

func BenchmarkUpload(b *testing.B) {
	_, src := benchFile(b)
	c := benchRunner(b)
	b.SetBytes(fileSize)
	for b.Loop() {
		in, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.PutFile(b.Context(), "upload.bin", in, 0); err != nil {
			b.Fatal(err)
		}
		in.Close()
	}
}

func BenchmarkDownload(b *testing.B) {
	dir, src := benchFile(b)
	c := benchRunner(b)
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.PutFile(b.Context(), "download.bin", in, 0); err != nil {
		b.Fatal(err)
	}
	in.Close()
	b.SetBytes(fileSize)
	for b.Loop() {
		rc, err := c.GetFile(b.Context(), "download.bin")
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dir, "dst"))
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(out, rc); err != nil || n != fileSize {
			b.Fatal(n, err)
		}
		rc.Close()
		out.Close()
	}
}

// httpClient8 keeps a connection per benchmark client alive.
var httpClient8 = http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

// BenchmarkOutputMemory streams b.N commands that each write 200 MB and
// reports the runner's peak RSS (the design's limit is 64 MiB).
func BenchmarkOutputMemory(b *testing.B) {
	p := startRunner(b, "run", "--listen=127.0.0.1:0")
	c := p.client()
	req := api.ExecuteRequest{Shell: "head -c 200000000 /dev/zero | tr '\\0' x"}
	b.SetBytes(200_000_000)
	for b.Loop() {
		res, err := c.Execute(b.Context(), req) // captured: cut at the cap
		if err != nil || !res.Truncated {
			b.Fatal(err, res)
		}
		if _, err := c.ExecuteStream(b.Context(), req, io.Discard, io.Discard); err != nil { // streamed whole
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(peakRSS(b, p.cmd.Process.Pid))/(1<<20), "peak-RSS-MiB")
}
