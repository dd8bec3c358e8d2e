package certs

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Rotator's Prometheus metrics; the label "certificate" is
// "ca" or "serving".
type Metrics struct {
	// Expiry is the expiry time (Unix seconds) of the serving certificate
	// loaded and of the signing CA.
	Expiry *prometheus.GaugeVec
	// Rotations counts certificates this replica created or replaced.
	Rotations *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sandbox_webhook_certificate_expiry_timestamp_seconds",
			Help: "When the serving certificate in use and the signing CA expire (Unix seconds), by certificate (ca, serving).",
		}, []string{"certificate"}),
		Rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_webhook_certificate_rotations_total",
			Help: "Certificates this replica created, renewed or replaced in the certificate Secret, by certificate (ca, serving).",
		}, []string{"certificate"}),
	}
	for _, c := range []string{"ca", "serving"} {
		m.Rotations.WithLabelValues(c)
	}
	if reg != nil {
		reg.MustRegister(m.Expiry, m.Rotations)
	}
	return m
}
