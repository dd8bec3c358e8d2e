package scale

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// WatchEventsMetric is the API server's counter of events sent to watchers,
// labelled by group, version and resource.
const WatchEventsMetric = "apiserver_watch_events_total"

// WatchEvents are the API server's watch events sent so far, per resource
// ("pods", "sandboxpools.sandbox.io", ...).
type WatchEvents map[string]float64

// Total is the sum over resources.
func (w WatchEvents) Total() float64 {
	var t float64
	for _, v := range w {
		t += v
	}
	return t
}

// Sub returns w - o, per resource.
func (w WatchEvents) Sub(o WatchEvents) WatchEvents {
	out := WatchEvents{}
	for k, v := range w {
		out[k] = v - o[k]
	}
	return out
}

// ParseWatchEvents reads WatchEventsMetric from Prometheus text exposition.
func ParseWatchEvents(r io.Reader) (WatchEvents, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing the API server's metrics: %w", err)
	}
	out := WatchEvents{}
	fam, ok := families[WatchEventsMetric]
	if !ok {
		return out, nil
	}
	for _, m := range fam.GetMetric() {
		var group, resource string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "group":
				group = l.GetValue()
			case "resource":
				resource = l.GetValue()
			}
		}
		key := resource
		if group != "" {
			key = resource + "." + group
		}
		out[key] += m.GetCounter().GetValue()
	}
	return out, nil
}

// ScrapeWatchEvents reads the API server's /metrics with cfg (which must be
// allowed to: envtest's admin is).
func ScrapeWatchEvents(ctx context.Context, cfg *rest.Config) (WatchEvents, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a client for /metrics: %w", err)
	}
	raw, err := kube.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's /metrics: %w", err)
	}
	return ParseWatchEvents(strings.NewReader(string(raw)))
}
