package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Admission results, the values of the "result" label.
const (
	ResultInjected = "injected"
	ResultSkipped  = "skipped"
	ResultRefused  = "refused"
	ResultError    = "error"
)

// Metrics are the handler's Prometheus metrics.
type Metrics struct {
	// Admissions counts admission requests by result.
	Admissions *prometheus.CounterVec
	// Injections counts injected pods by method and mode (what the log
	// line of each injected pod said at Info; it is at Debug now).
	Injections *prometheus.CounterVec
	// Latency is the handler's time per request, by result.
	Latency *prometheus.HistogramVec
	// LookupFailures counts image ENTRYPOINT/CMD lookups that failed.
	LookupFailures prometheus.Counter
	// Panics counts recovered panics.
	Panics prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_webhook_admissions_total",
			Help: "Pod admission requests handled, by result (injected, skipped, refused, error).",
		}, []string{"result"}),
		Injections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_webhook_injections_total",
			Help: "Pods injected (dry runs not counted), by injection method (copy, imageVolume) and runner mode (server, wrap).",
		}, []string{"method", "mode"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sandbox_webhook_admission_duration_seconds",
			Help:    "Time the handler spent on one admission request, by result.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}, []string{"result"}),
		LookupFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sandbox_webhook_entrypoint_lookup_failures_total",
			Help: "Image ENTRYPOINT/CMD lookups that failed (the runner then starts without a child, or the pod is refused in wrap mode).",
		}),
		Panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sandbox_webhook_panics_total",
			Help: "Panics recovered in the admission handler.",
		}),
	}
	for _, r := range []string{ResultInjected, ResultSkipped, ResultRefused, ResultError} {
		m.Admissions.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.Admissions, m.Injections, m.Latency, m.LookupFailures, m.Panics)
	}
	return m
}
