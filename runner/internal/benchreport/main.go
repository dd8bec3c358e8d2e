// Command benchreport reads the output of the runner's benchmarks
// (go test -bench ./cmd/sandbox-runner) on stdin and prints one table with
// each figure beside its baseline from the same run, the ratio, and the
// design target. `make bench-runner` pipes into it.
//
//	go run ./runner/internal/benchreport -binary bin/sandbox-runner < bench.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

var nameRE = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?$`)

// parse returns benchmark -> unit -> value.
func parse(r io.Reader) (map[string]map[string]float64, error) {
	out := map[string]map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		m := nameRE.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		units := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("parsing %q in %q: %w", f[i], sc.Text(), err)
			}
			units[f[i+1]] = v
		}
		out[m[1]] = units
	}
	return out, sc.Err()
}

func run(args []string, in io.Reader, w io.Writer) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	binary := fs.String("binary", "", "the stripped runner binary, for its size")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := parse(in)
	if err != nil {
		return err
	}
	get := func(b, unit string) (float64, bool) {
		v, ok := res[b][unit]
		return v, ok
	}
	row := func(what, value, baseline, ratio, target string) {
		fmt.Fprintf(w, "| %-34s | %-14s | %-24s | %-18s | %-30s |\n", what, value, baseline, ratio, target)
	}
	fmt.Fprintln(w, "sandbox-runner benchmarks (baselines measured in the same run)")
	fmt.Fprintln(w)
	row("measure", "runner", "baseline", "ratio / delta", "target (peer measured here)")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 36), strings.Repeat("-", 16), strings.Repeat("-", 26), strings.Repeat("-", 20), strings.Repeat("-", 32))
	if *binary != "" {
		fi, err := os.Stat(*binary)
		if err != nil {
			return fmt.Errorf("reading the binary's size: %w", err)
		}
		mib := float64(fi.Size()) / (1 << 20)
		row("binary size (static, stripped)", fmt.Sprintf("%.2f MiB", mib), "", "", "< 6 MiB (6.09 MiB)")
	}
	if r50, ok := get("BenchmarkExecuteTrueLatency", "runner-p50-µs"); ok {
		d50, _ := get("BenchmarkExecuteTrueLatency", "direct-p50-µs")
		r99, _ := get("BenchmarkExecuteTrueLatency", "runner-p99-µs")
		d99, _ := get("BenchmarkExecuteTrueLatency", "direct-p99-µs")
		row("/execute true, p50", fmt.Sprintf("%.0f µs", r50), fmt.Sprintf("fork-exec %.0f µs", d50), fmt.Sprintf("%+.0f µs", r50-d50), "< +500 µs (+460 µs)")
		row("/execute true, p99", fmt.Sprintf("%.0f µs", r99), fmt.Sprintf("fork-exec %.0f µs", d99), fmt.Sprintf("%+.0f µs", r99-d99), "")
	}
	if r, ok := get("BenchmarkExecuteTrue8Clients", "runner-ops/s"); ok {
		d, _ := get("BenchmarkExecuteTrue8Clients", "direct-ops/s")
		ratio, _ := get("BenchmarkExecuteTrue8Clients", "ratio")
		med, _ := get("BenchmarkExecuteTrue8Clients", "median-ratio")
		row("/execute true, 8 clients", fmt.Sprintf("%.0f ops/s", r), fmt.Sprintf("fork-exec %.0f ops/s", d), fmt.Sprintf("%.2fx (med %.2fx)", ratio, med), ">= 0.8x (0.67-0.70x)")
	}
	copyMB, hasCopy := get("BenchmarkPlainFileCopy", "MB/s")
	for _, f := range []struct{ name, label string }{{"BenchmarkUpload", "upload 64 MiB (PUT /files)"}, {"BenchmarkDownload", "download 64 MiB (GET /files)"}} {
		if v, ok := get(f.name, "MB/s"); ok {
			base, ratio := "", ""
			if hasCopy {
				base, ratio = fmt.Sprintf("file copy %.0f MB/s", copyMB), fmt.Sprintf("%.2fx", v/copyMB)
			}
			row(f.label, fmt.Sprintf("%.0f MB/s", v), base, ratio, "")
		}
	}
	if v, ok := get("BenchmarkOutputMemory", "peak-RSS-MiB"); ok {
		row("peak RSS, 200 MB of output", fmt.Sprintf("%.1f MiB", v), "", "", "< 64 MiB (729 MB)")
	}
	return nil
}
