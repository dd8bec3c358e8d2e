package startupbench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"sandbox.io/injector/e2e/claimbench"
)

// Kind is how a measured pod is built.
type Kind string

// The kinds of pod compared: the same busybox pod uninjected, injected with
// the runner copied by an init container, and injected with the runner
// image mounted as an image volume.
const (
	Plain       Kind = "plain"
	Copy        Kind = "copy"
	ImageVolume Kind = "image volume"
)

// Kinds lists every Kind, plain first (the reference of the comparisons).
var Kinds = []Kind{Plain, Copy, ImageVolume}

// MarkReady is the headline mark: the pod's Ready condition seen True.
const MarkReady = "condition Ready"

// MarkCreated is when the create call returned (the API server, and for
// injected pods the webhook, answered).
const MarkCreated = "create call returned (admission)"

// Sample is one pod's measurements.
type Sample struct {
	Kind Kind
	Pod  string
	// Marks are offsets from the moment before the create call to when a
	// watch first showed each step (see the package doc for their names).
	Marks map[string]time.Duration
	// Kubelet are durations the kubelet itself measured for this pod, by
	// row label (empty when the pod did not start alone).
	Kubelet map[string]time.Duration
	// Counts are per-pod counts from the kubelet's metrics, by row label.
	Counts map[string]float64
	// Coarse are durations from the API's whole-second timestamps.
	Coarse map[string]time.Duration
}

// Run is one set of pods measured together.
type Run struct {
	// Title heads the table.
	Title string
	// P99 adds a p99 column (meaningful with 50 pods or more).
	P99     bool
	Samples []Sample
}

// Table prints the run: per row (a mark, or a kubelet timing) and kind, the
// number of pods that had it, its p50, p90 (and p99), and for the injected
// kinds the p50 and p90 differences and the p50 ratio against plain.
// Create to Ready comes first, then the marks in the order of their median
// offset, then the kubelet's timings, counts and the coarse cross-check.
func (r *Run) Table(w io.Writer) {
	fmt.Fprintf(w, "\n%s\n", r.Title)
	head := fmt.Sprintf("  %-56s %-12s %3s %8s %8s", "", "kind", "n", "p50", "p90")
	if r.P99 {
		head += fmt.Sprintf(" %8s", "p99")
	}
	fmt.Fprintln(w, head+"   vs plain: p50, p90 (p50 ratio)")

	marks := func(s Sample) map[string]time.Duration { return s.Marks }
	fmt.Fprintln(w, "time from the create call to a watch first seeing it (ms; watch-observed, ms precision)")
	rows := r.rowOrder(marks)
	for _, name := range rows {
		r.durationRow(w, name, marks)
	}
	kubelet := func(s Sample) map[string]time.Duration { return s.Kubelet }
	if rows := r.rowOrder(kubelet); len(rows) > 0 {
		fmt.Fprintln(w, "the kubelet's own timings for the pod (ms; from its /metrics, histogram _sum before and after the pod started alone)")
		for _, name := range rows {
			r.durationRow(w, name, kubelet)
		}
	}
	if names := r.countNames(); len(names) > 0 {
		fmt.Fprintln(w, "per-pod counts from the kubelet's /metrics")
		for _, name := range names {
			r.countRow(w, name)
		}
	}
	coarse := func(s Sample) map[string]time.Duration { return s.Coarse }
	if rows := r.rowOrder(coarse); len(rows) > 0 {
		fmt.Fprintln(w, "from the API's timestamps (whole seconds: +-1 s)")
		for _, name := range rows {
			r.durationRow(w, name, coarse)
		}
	}
}

// rowOrder returns the row names of one section: MarkReady first when
// present, then by median over every sample that has the row.
func (r *Run) rowOrder(get func(Sample) map[string]time.Duration) []string {
	all := map[string][]time.Duration{}
	for _, s := range r.Samples {
		for name, d := range get(s) {
			all[name] = append(all[name], d)
		}
	}
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	median := func(name string) time.Duration {
		v := slices.Clone(all[name])
		slices.Sort(v)
		return claimbench.Percentile(v, 50)
	}
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case a == MarkReady:
			return -1
		case b == MarkReady:
			return 1
		}
		if c := median(a) - median(b); c != 0 {
			return int(max(-1, min(1, c)))
		}
		return strings.Compare(a, b)
	})
	return names
}

// Values returns the sorted values of one row for one kind.
func (r *Run) Values(kind Kind, get func(Sample) map[string]time.Duration, name string) []time.Duration {
	var v []time.Duration
	for _, s := range r.Samples {
		if d, ok := get(s)[name]; ok && s.Kind == kind {
			v = append(v, d)
		}
	}
	slices.Sort(v)
	return v
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

func signedMS(d time.Duration) string {
	if d >= 0 {
		return "+" + ms(d)
	}
	return ms(d)
}

func (r *Run) durationRow(w io.Writer, name string, get func(Sample) map[string]time.Duration) {
	plain := r.Values(Plain, get, name)
	label := name
	for _, k := range Kinds {
		v := r.Values(k, get, name)
		if len(v) == 0 {
			continue
		}
		p50, p90 := claimbench.Percentile(v, 50), claimbench.Percentile(v, 90)
		cols := fmt.Sprintf("%8s %8s", ms(p50), ms(p90))
		if r.P99 {
			cols += fmt.Sprintf(" %8s", ms(claimbench.Percentile(v, 99)))
		}
		vs := ""
		if k != Plain && len(plain) > 0 {
			b50, b90 := claimbench.Percentile(plain, 50), claimbench.Percentile(plain, 90)
			vs = fmt.Sprintf("   %s, %s", signedMS(p50-b50), signedMS(p90-b90))
			if b50 > 0 {
				vs += fmt.Sprintf(" (%.2fx)", claimbench.Ratio(p50, b50))
			}
		}
		fmt.Fprintf(w, "  %-56s %-12s %3d %s%s\n", label, k, len(v), cols, vs)
		label = ""
	}
}

func (r *Run) countNames() []string {
	seen := map[string]bool{}
	for _, s := range r.Samples {
		for name := range s.Counts {
			seen[name] = true
		}
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (r *Run) countRow(w io.Writer, name string) {
	label := name
	for _, k := range Kinds {
		var v []float64
		for _, s := range r.Samples {
			if c, ok := s.Counts[name]; ok && s.Kind == k {
				v = append(v, c)
			}
		}
		if len(v) == 0 {
			continue
		}
		slices.Sort(v)
		var sum float64
		nonzero := 0
		for _, c := range v {
			sum += c
			if c != 0 {
				nonzero++
			}
		}
		at := func(p float64) float64 {
			rank := int(math.Ceil(p / 100 * float64(len(v))))
			return v[max(1, min(rank, len(v)))-1]
		}
		cols := fmt.Sprintf("%8g %8g", at(50), at(90))
		if r.P99 {
			cols += fmt.Sprintf(" %8g", at(99))
		}
		fmt.Fprintf(w, "  %-56s %-12s %3d %s   mean %.2f, %d of %d pods non-zero\n", label, k, len(v), cols, sum/float64(len(v)), nonzero, len(v))
		label = ""
	}
}
