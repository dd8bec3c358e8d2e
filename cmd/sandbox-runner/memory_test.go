package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"sandbox.io/injector/runner/api"
)

// peakRSS returns the peak resident set (VmHWM) of pid in bytes.
func peakRSS(t testing.TB, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// TestOutputMemoryBounded runs a command that writes 200 MB, once captured
// (JSON, cut at the cap) and once streamed (NDJSON), and checks the runner
// never held more than 64 MiB resident: output is drained in chunks, never
// buffered whole.
func TestOutputMemoryBounded(t *testing.T) {
	t.Parallel()
	const total = 200_000_000
	p := startRunner(t, "run", "--listen=127.0.0.1:0")
	c := p.client()
	shell := fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", total)

	res, err := c.Execute(t.Context(), api.ExecuteRequest{Shell: shell})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Truncated || len(res.Stdout) != 1<<20 || res.ExitCode != 0 {
		t.Fatalf("captured: truncated=%v len=%d exit=%d", res.Truncated, len(res.Stdout), res.ExitCode)
	}
	var n countWriter
	res, err = c.ExecuteStream(t.Context(), api.ExecuteRequest{Shell: shell}, &n, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if n.n != total || res.ExitCode != 0 {
		t.Fatalf("streamed %d bytes (want %d), exit %d", n.n, total, res.ExitCode)
	}
	peak := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("runner peak RSS after 2 x 200 MB of output: %.1f MiB", float64(peak)/(1<<20))
	if peak > 64<<20 {
		t.Errorf("runner peak RSS %.1f MiB, limit 64 MiB", float64(peak)/(1<<20))
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, 0) >= 0 {
		return 0, fmt.Errorf("NUL byte in output")
	}
	c.n += int64(len(p))
	return len(p), nil
}
