package scale

import (
	"strings"
	"testing"
)

const sampleMetrics = `# HELP apiserver_watch_events_total [ALPHA] Number of events sent in watch clients
# TYPE apiserver_watch_events_total counter
apiserver_watch_events_total{group="",resource="pods",version="v1"} 120
apiserver_watch_events_total{group="",resource="nodes",version="v1"} 30
apiserver_watch_events_total{group="sandbox.io",resource="sandboxpools",version="v1alpha1"} 7
apiserver_watch_events_total{group="sandbox.io",resource="sandboxclaims",version="v1alpha1"} 5
# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",verb="GET"} 99
`

func TestParseWatchEvents(t *testing.T) {
	w, err := ParseWatchEvents(strings.NewReader(sampleMetrics))
	if err != nil {
		t.Fatal(err)
	}
	want := WatchEvents{"pods": 120, "nodes": 30, "sandboxpools.sandbox.io": 7, "sandboxclaims.sandbox.io": 5}
	if len(w) != len(want) {
		t.Fatalf("got %v, want %v", w, want)
	}
	for k, v := range want {
		if w[k] != v {
			t.Fatalf("%s = %v, want %v (all: %v)", k, w[k], v, w)
		}
	}
	if w.Total() != 162 {
		t.Fatalf("total %v", w.Total())
	}
	d := w.Sub(WatchEvents{"pods": 100, "nodes": 30})
	if d["pods"] != 20 || d["nodes"] != 0 || d["sandboxpools.sandbox.io"] != 7 || d.Total() != 32 {
		t.Fatalf("Sub = %v", d)
	}
}

func TestParseWatchEventsWithoutTheMetric(t *testing.T) {
	w, err := ParseWatchEvents(strings.NewReader("# TYPE x counter\nx 1\n"))
	if err != nil || len(w) != 0 {
		t.Fatalf("got %v, %v", w, err)
	}
	if _, err := ParseWatchEvents(strings.NewReader("not { metrics")); err == nil {
		t.Fatal("garbage parsed")
	}
}
