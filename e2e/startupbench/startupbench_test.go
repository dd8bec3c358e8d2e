package startupbench

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

const page = `# HELP kubelet_pod_start_duration_seconds [ALPHA] Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run
# TYPE kubelet_pod_start_duration_seconds histogram
kubelet_pod_start_duration_seconds_bucket{le="0.5"} 3
kubelet_pod_start_duration_seconds_sum 1.25
kubelet_pod_start_duration_seconds_count 4
kubelet_runtime_operations_duration_seconds_sum{operation_type="start_container"} 0.5
kubelet_runtime_operations_duration_seconds_count{operation_type="start_container"} 10
kubelet_runtime_operations_duration_seconds_sum{operation_type="run_podsandbox"} 2
kubelet_runtime_operations_duration_seconds_count{operation_type="run_podsandbox"} 5
prober_probe_total{container="app",namespace="ns",pod="p-1",pod_uid="u",probe_type="Readiness",result="failed"} 2
prober_probe_total{container="app",namespace="ns",pod="p-1",pod_uid="u",probe_type="Readiness",result="successful"} 7
prober_probe_total{container="app",namespace="ns",pod="p-2",pod_uid="v",probe_type="Readiness",result="failed"} 5
odd_label{msg="a \"quoted\", comma} and brace"} 1.5e-3 1700000000
`

func TestParseMetricsAndSum(t *testing.T) {
	t.Parallel()
	m, err := ParseMetrics(page)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		metric string
		match  map[string]string
		want   float64
		ok     bool
	}{
		{"unlabelled", "kubelet_pod_start_duration_seconds_sum", nil, 1.25, true},
		{"every label set", "kubelet_runtime_operations_duration_seconds_count", nil, 15, true},
		{"one operation", "kubelet_runtime_operations_duration_seconds_sum", map[string]string{"operation_type": "run_podsandbox"}, 2, true},
		{"one pod, every result", "prober_probe_total", map[string]string{"pod": "p-1"}, 9, true},
		{"one pod, failures", "prober_probe_total", map[string]string{"pod": "p-2", "result": "failed"}, 5, true},
		{"escaped label value", "odd_label", map[string]string{"msg": `a "quoted", comma} and brace`}, 1.5e-3, true},
		{"absent", "no_such_metric", nil, 0, false},
		{"no series matches", "prober_probe_total", map[string]string{"pod": "p-3"}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := m.Sum(tc.metric, tc.match)
			if got != tc.want || ok != tc.ok {
				t.Errorf("Sum = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseMetricsRefusesMalformed(t *testing.T) {
	t.Parallel()
	for _, line := range []string{"name_only", `x{a="b} 1`, `x{a=b} 1`, "x notanumber"} {
		if _, err := ParseMetrics(line + "\n"); err == nil {
			t.Errorf("%q parsed", line)
		}
	}
}

func TestPodDeltas(t *testing.T) {
	t.Parallel()
	before, err := ParseMetrics(`kubelet_pod_start_duration_seconds_sum 1.25
kubelet_pod_start_duration_seconds_count 4
kubelet_runtime_operations_duration_seconds_sum{operation_type="run_podsandbox"} 2
kubelet_runtime_operations_duration_seconds_count{operation_type="run_podsandbox"} 5
kubelet_runtime_operations_duration_seconds_sum{operation_type="pull_image"} 3
kubelet_runtime_operations_duration_seconds_count{operation_type="pull_image"} 1
`)
	if err != nil {
		t.Fatal(err)
	}
	after, err := ParseMetrics(`kubelet_pod_start_duration_seconds_sum 1.75
kubelet_pod_start_duration_seconds_count 5
kubelet_runtime_operations_duration_seconds_sum{operation_type="run_podsandbox"} 2.125
kubelet_runtime_operations_duration_seconds_count{operation_type="run_podsandbox"} 6
kubelet_runtime_operations_duration_seconds_sum{operation_type="pull_image"} 3
kubelet_runtime_operations_duration_seconds_count{operation_type="pull_image"} 1
kubelet_runtime_operations_total{operation_type="pull_image"} 1
prober_probe_total{pod="p-1",probe_type="Readiness",result="failed"} 1
prober_probe_total{pod="p-1",probe_type="Readiness",result="successful"} 1
prober_probe_total{pod="other",probe_type="Readiness",result="failed"} 9
`)
	if err != nil {
		t.Fatal(err)
	}
	s := Sample{Pod: "p-1"}
	PodDeltas(&s, before, after)
	wantKubelet := map[string]time.Duration{
		"kubelet: first seen to running (pod_start_duration)": 500 * time.Millisecond,
		"kubelet: CRI RunPodSandbox":                          125 * time.Millisecond,
		// PullImage did not run: its count did not grow, so no row.
	}
	if d := cmp.Diff(wantKubelet, s.Kubelet); d != "" {
		t.Errorf("Kubelet (-want +got):\n%s", d)
	}
	wantCounts := map[string]float64{"readiness probes failed": 1, "readiness probes": 2, "CRI PullImage calls": 1}
	if d := cmp.Diff(wantCounts, s.Counts); d != "" {
		t.Errorf("Counts (-want +got):\n%s", d)
	}
}

func TestEventMark(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"spec.containers{app}":                   "event Started app",
		"spec.initContainers{sandbox-runner-cp}": "event Started init sandbox-runner-cp",
		"spec.volumes{sandbox-runner}":           "event Started volume sandbox-runner",
		"":                                       "event Started",
		"something.else":                         "event Started something.else",
	}
	for path, want := range cases {
		ev := &corev1.Event{Reason: "Started", InvolvedObject: corev1.ObjectReference{FieldPath: path}}
		if got := eventMark(ev); got != want {
			t.Errorf("eventMark(%q) = %q, want %q", path, got, want)
		}
	}
}

func msd(v int) time.Duration { return time.Duration(v) * time.Millisecond }

func TestTable(t *testing.T) {
	t.Parallel()
	r := Run{Title: "sequential", P99: true}
	for i := range 10 {
		r.Samples = append(r.Samples,
			Sample{Kind: Plain, Pod: "p", Marks: map[string]time.Duration{MarkReady: msd(500 + i), MarkCreated: msd(10)},
				Kubelet: map[string]time.Duration{"kubelet: CRI RunPodSandbox": msd(100)}},
			Sample{Kind: Copy, Pod: "c", Marks: map[string]time.Duration{MarkReady: msd(1000 + i), MarkCreated: msd(20), "event Started init x": msd(300)},
				Counts: map[string]float64{"readiness probes failed": float64(i % 2)}},
			Sample{Kind: ImageVolume, Pod: "v", Marks: map[string]time.Duration{MarkReady: msd(550 + i), MarkCreated: msd(20)}},
		)
	}
	var b strings.Builder
	r.Table(&b)
	out := b.String()
	t.Log("\n" + out)
	lines := strings.Split(out, "\n")
	find := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return i
			}
		}
		t.Fatalf("no line starts with %q", prefix)
		return -1
	}
	ready, created, init := find(MarkReady), find(MarkCreated), find("event Started init x")
	if ready >= created || created >= init {
		t.Errorf("rows out of order: Ready %d, created %d, init %d", ready, created, init)
	}
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for want, line := range map[string]int{
		// p50 (nearest rank, 10 samples: the 5th), p90 (the 9th), p99 (the 10th).
		"plain 10 504.0 508.0 509.0":                             ready,
		"copy 10 1004.0 1008.0 1009.0 +500.0, +500.0 (1.99x)":    ready + 1,
		"image volume 10 554.0 558.0 559.0 +50.0, +50.0 (1.10x)": ready + 2,
		"copy 10 300.0 300.0 300.0":                              init,
		"copy 10 0 1 1 mean 0.50, 5 of 10 pods non-zero":         find("readiness probes failed"),
		"kubelet: CRI RunPodSandbox plain 10 100.0 100.0 100.0":  find("kubelet: CRI RunPodSandbox"),
	} {
		if !strings.Contains(norm(lines[line]), want) {
			t.Errorf("line %q does not contain %q", lines[line], want)
		}
	}
	if strings.Contains(lines[init], "vs plain") || strings.Contains(lines[init], "+") {
		t.Errorf("a row plain lacks has a comparison: %q", lines[init])
	}
}

func TestGrowthByLabel(t *testing.T) {
	t.Parallel()
	before, err := ParseMetrics(`kubelet_runtime_operations_total{operation_type="run_podsandbox"} 5
kubelet_runtime_operations_total{operation_type="container_status"} 100
kubelet_runtime_operations_total{operation_type="version"} 7
kubelet_pod_worker_duration_seconds_count{operation_type="sync"} 3
`)
	if err != nil {
		t.Fatal(err)
	}
	after, err := ParseMetrics(`kubelet_runtime_operations_total{operation_type="run_podsandbox"} 25
kubelet_runtime_operations_total{operation_type="container_status"} 160
kubelet_runtime_operations_total{operation_type="version"} 7
kubelet_runtime_operations_total{operation_type="create_container"} 20
kubelet_pod_worker_duration_seconds_count{operation_type="sync"} 9
`)
	if err != nil {
		t.Fatal(err)
	}
	g := GrowthByLabel(before, after, "kubelet_runtime_operations_total", "operation_type")
	// version did not grow: left out; create_container is new: all of it.
	want := map[string]float64{"run_podsandbox": 20, "container_status": 60, "create_container": 20}
	if d := cmp.Diff(want, g); d != "" {
		t.Errorf("GrowthByLabel (-want +got):\n%s", d)
	}
	if got, want := FormatGrowth(g), "container_status 60, create_container 20, run_podsandbox 20"; got != want {
		t.Errorf("FormatGrowth = %q, want %q", got, want)
	}
	if got := FormatGrowth(GrowthByLabel(after, after, "kubelet_runtime_operations_total", "operation_type")); got != "none" {
		t.Errorf("FormatGrowth of no growth = %q, want none", got)
	}
}
