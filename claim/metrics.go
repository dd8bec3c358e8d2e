package claim

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a claim, the values of the result label.
const (
	ResultWarm   = "warm"
	ResultCold   = "cold"
	ResultFailed = "failed"
)

type metrics struct {
	claims   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_claim_total",
			Help: "Claims of sandboxes from warm pools, by result: warm (adopted a warm pod), cold (created a pod after the grace period), failed.",
		}, []string{"result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sandbox_claim_duration_seconds",
			Help:    "Time from the start of a claim to a sandbox whose runner holds the claimant's token, by result.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"result"}),
	}
	for _, r := range []string{ResultWarm, ResultCold, ResultFailed} {
		m.claims.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.claims, m.duration} {
		if err := reg.Register(c); err != nil {
			if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
				return nil, fmt.Errorf("registering claim metrics: another claimer registered them on this registry: %w", err)
			}
			return nil, fmt.Errorf("registering claim metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(result string, seconds float64) {
	m.claims.WithLabelValues(result).Inc()
	m.duration.WithLabelValues(result).Observe(seconds)
}
