package startupbench

import (
	"bufio"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Series is one line of the Prometheus text format: a metric name, its
// labels and its value.
type Series struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics is a parsed /metrics page.
type Metrics []Series

// ParseMetrics reads the Prometheus text exposition format (comments and
// timestamps ignored).
func ParseMetrics(text string) (Metrics, error) {
	var out Metrics
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSeries(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d %q: %w", n, line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseSeries(line string) (Series, error) {
	s := Series{Labels: map[string]string{}}
	rest := line
	if i := strings.IndexAny(line, "{ "); i < 0 {
		return s, fmt.Errorf("no value")
	} else {
		s.Name, rest = line[:i], line[i:]
	}
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq < 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return s, fmt.Errorf("malformed labels")
			}
			key := strings.TrimSpace(rest[:eq])
			rest = rest[eq+2:]
			var val strings.Builder
			closed := false
			for i := 0; i < len(rest); i++ {
				c := rest[i]
				if c == '\\' && i+1 < len(rest) {
					i++
					switch rest[i] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[i])
					}
					continue
				}
				if c == '"' {
					rest, closed = rest[i+1:], true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return s, fmt.Errorf("unterminated label value")
			}
			s.Labels[key] = val.String()
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return s, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("value: %w", err)
	}
	s.Value = v
	return s, nil
}

// Sum adds the values of every series named name whose labels include
// match; ok is false when no series matched.
func (m Metrics) Sum(name string, match map[string]string) (sum float64, ok bool) {
next:
	for _, s := range m {
		if s.Name != name {
			continue
		}
		for k, v := range match {
			if s.Labels[k] != v {
				continue next
			}
		}
		sum += s.Value
		ok = true
	}
	return sum, ok
}

// KubeletTiming is one per-pod duration read from a kubelet histogram: the
// growth of its _sum while one pod started alone.
type KubeletTiming struct {
	// Label names the row in the table.
	Label string
	// Histogram is the histogram's name (without _sum).
	Histogram string
	// Match selects series by label (nil: all); "{pod}" as a value is
	// replaced by the pod's name.
	Match map[string]string
}

// KubeletCount is one per-pod count read from a kubelet counter.
type KubeletCount struct {
	Label  string
	Metric string
	// Match selects series by label; "{pod}" as a value is replaced by the
	// pod's name.
	Match map[string]string
}

// KubeletTimings are the kubelet's timings of one pod start that the
// benchmark reads (the kubelet's metric names, v1.37).
var KubeletTimings = []KubeletTiming{
	{Label: "kubelet: first seen to running (pod_start_duration)", Histogram: "kubelet_pod_start_duration_seconds"},
	{Label: "kubelet: first seen to pod worker start", Histogram: "kubelet_pod_worker_start_duration_seconds"},
	{Label: "kubelet: first SyncPod (pod_worker_duration create)", Histogram: "kubelet_pod_worker_duration_seconds", Match: map[string]string{"operation_type": "create"}},
	{Label: "kubelet: CRI RunPodSandbox", Histogram: "kubelet_runtime_operations_duration_seconds", Match: map[string]string{"operation_type": "run_podsandbox"}},
	{Label: "kubelet: CRI ImageStatus (all calls)", Histogram: "kubelet_runtime_operations_duration_seconds", Match: map[string]string{"operation_type": "image_status"}},
	{Label: "kubelet: CRI PullImage (all calls)", Histogram: "kubelet_runtime_operations_duration_seconds", Match: map[string]string{"operation_type": "pull_image"}},
	{Label: "kubelet: CRI CreateContainer (all containers)", Histogram: "kubelet_runtime_operations_duration_seconds", Match: map[string]string{"operation_type": "create_container"}},
	{Label: "kubelet: CRI StartContainer (all containers)", Histogram: "kubelet_runtime_operations_duration_seconds", Match: map[string]string{"operation_type": "start_container"}},
	{Label: "kubelet: readiness probe run time (all runs)", Histogram: "prober_probe_duration_seconds", Match: map[string]string{"pod": "{pod}", "probe_type": "Readiness"}},
	{Label: "kubelet: created to running seen, no pulls (start_sli; creation 1 s)", Histogram: "kubelet_pod_start_sli_duration_seconds"},
	{Label: "kubelet: created to running seen (start_total; creation 1 s)", Histogram: "kubelet_pod_start_total_duration_seconds"},
}

// KubeletCounts are the per-pod counts the benchmark reads.
var KubeletCounts = []KubeletCount{
	{Label: "readiness probes failed", Metric: "prober_probe_total", Match: map[string]string{"pod": "{pod}", "probe_type": "Readiness", "result": "failed"}},
	{Label: "readiness probes", Metric: "prober_probe_total", Match: map[string]string{"pod": "{pod}", "probe_type": "Readiness"}},
	{Label: "CRI PullImage calls", Metric: "kubelet_runtime_operations_total", Match: map[string]string{"operation_type": "pull_image"}},
	{Label: "CRI CreateContainer calls", Metric: "kubelet_runtime_operations_total", Match: map[string]string{"operation_type": "create_container"}},
}

// PodDeltas fills a sample's Kubelet timings and Counts from the kubelet's
// metrics before and after the pod started alone. A timing whose histogram
// is absent, or whose count did not grow, is left out.
func PodDeltas(s *Sample, before, after Metrics) {
	if s.Kubelet == nil {
		s.Kubelet = map[string]time.Duration{}
	}
	if s.Counts == nil {
		s.Counts = map[string]float64{}
	}
	forPod := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = strings.ReplaceAll(v, "{pod}", s.Pod)
		}
		return out
	}
	for _, t := range KubeletTimings {
		match := forPod(t.Match)
		n0, _ := before.Sum(t.Histogram+"_count", match)
		n1, ok := after.Sum(t.Histogram+"_count", match)
		if !ok || n1 <= n0 {
			continue
		}
		s0, _ := before.Sum(t.Histogram+"_sum", match)
		s1, _ := after.Sum(t.Histogram+"_sum", match)
		s.Kubelet[t.Label] = time.Duration((s1 - s0) * float64(time.Second))
	}
	for _, c := range KubeletCounts {
		match := forPod(c.Match)
		v0, _ := before.Sum(c.Metric, match)
		v1, ok := after.Sum(c.Metric, match)
		if !ok {
			continue
		}
		s.Counts[c.Label] = v1 - v0
	}
}

// GrowthByLabel is how much each series of the counter name grew from
// before to after, keyed by the value of its label (series of one value
// summed). Values that did not grow are left out. Used for what the
// kubelet did during a window: its CRI calls by operation_type, its pod
// worker runs by operation_type.
func GrowthByLabel(before, after Metrics, name, label string) map[string]float64 {
	sum := func(m Metrics) map[string]float64 {
		out := map[string]float64{}
		for _, s := range m {
			if s.Name == name {
				out[s.Labels[label]] += s.Value
			}
		}
		return out
	}
	b, a := sum(before), sum(after)
	out := map[string]float64{}
	for k, v := range a {
		if d := v - b[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// FormatGrowth prints a GrowthByLabel result largest first, as
// "name N, name N" ("none" when empty).
func FormatGrowth(g map[string]float64) string {
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if g[keys[i]] != g[keys[j]] {
			return g[keys[i]] > g[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %g", k, g[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
