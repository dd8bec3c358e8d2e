package prepuller

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Pull results, the values of the "result" label.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
)

type metrics struct {
	pulls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    prometheus.Counter
	present  prometheus.Gauge
	desired  prometheus.Gauge
	paused   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_prepuller_pulls_total",
			Help: "Image pulls through the CRI image service, by result (success, failure).",
		}, []string{"result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sandbox_prepuller_pull_duration_seconds",
			Help:    "Time one image pull took, by result.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sandbox_prepuller_pulled_bytes_total",
			Help: "Size of the images pulled (as the runtime reports it), counted when a pull brought a new image.",
		}),
		present: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sandbox_prepuller_images_present",
			Help: "Desired images the runtime has.",
		}),
		desired: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sandbox_prepuller_images_desired",
			Help: "Images in the desired set.",
		}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sandbox_prepuller_paused",
			Help: "1 while pulls are paused because the image filesystem is used above the threshold, else 0.",
		}),
	}
	for _, r := range []string{ResultSuccess, ResultFailure} {
		m.pulls.WithLabelValues(r)
		m.duration.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.pulls, m.duration, m.bytes, m.present, m.desired, m.paused} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering prepuller metrics: %w", err)
			}
		}
	}
	return m, nil
}
