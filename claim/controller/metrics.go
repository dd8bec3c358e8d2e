package controller

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the step label of sandbox_claim_bind_step_duration_seconds.
const (
	stepTake   = "take"
	stepRunner = "runner"
	stepStatus = "status"
)

// Values of the outcome label of sandbox_claim_take_conflicts_total.
const (
	takeRetried = "retried"
	takeLost    = "lost"
)

// Values of the result label of sandbox_claims_total.
const (
	resultBound  = "bound"
	resultFailed = "failed"
)

type metrics struct {
	claims   *prometheus.CounterVec
	bind     *prometheus.HistogramVec
	step     *prometheus.HistogramVec
	expired  prometheus.Counter
	reserved prometheus.Gauge
	outdated prometheus.Counter
	// unheldDeleted counts warm pods deleted for their claim key (sweep.go).
	unheldDeleted prometheus.Counter
	// orphansDeleted counts pool pods deleted for having no pool or claim
	// as controller (orphans.go).
	orphansDeleted prometheus.Counter
	// orphansUndeleted is how many such pods the API server refused to
	// let the controller delete, as of their last attempt (orphans.go).
	orphansUndeleted prometheus.Gauge
	// takeConflicts counts warm pods found changed at their conditional
	// update, by what came of it (takeRetried, takeLost).
	takeConflicts *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_claims_total",
			Help: "SandboxClaims the controller finished binding, by origin (warm, cold) and result (bound, failed).",
		}, []string{"origin", "result"}),
		bind: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sandbox_claim_bind_duration_seconds",
			Help:    "Time from when the controller first saw a pending SandboxClaim to its Bound status write, by origin.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 180},
		}, []string{"origin"}),
		step: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sandbox_claim_bind_step_duration_seconds",
			Help:    "Time of each step of binding a claim to a warm pod: take (the pod's conditional update), runner (its POST /claim), status (the Bound status write).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"step"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sandbox_claims_expired_total",
			Help: "SandboxClaims whose lifetime ended (their pods deleted).",
		}),
		reserved: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sandbox_claim_reserved_pods",
			Help: "Warm pods reserved by a claim in progress.",
		}),
		outdated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sandbox_claim_outdated_runners_total",
			Help: "Warm pods a claim let go because their older runner speaks another claim protocol (a rollout in progress); the claim waited for a current runner.",
		}),
		unheldDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sandbox_claim_unheld_key_pods_deleted_total",
			Help: "Warm pods the controller deleted because they were injected under a claim key it does not hold (rotated away); the node agents replace them under the current key.",
		}),
		orphansDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sandbox_claim_orphaned_pods_deleted_total",
			Help: "Pool pods the controller deleted because neither a SandboxPool nor a SandboxClaim controlled them any more (an owner deleted with --cascade=orphan).",
		}),
		orphansUndeleted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sandbox_claim_orphaned_pods_not_deleted",
			Help: "Orphaned pool pods (no SandboxPool or SandboxClaim controls them) whose last deletion the API server refused (RBAC, an admission policy or webhook): sandboxes running on with no claim; the controller retries with back-off. Only the leader counts.",
		}),
		takeConflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_claim_take_conflicts_total",
			Help: "Warm pods whose conditional update (the take) found them changed since the cache read them, by outcome: retried (read again and still free, most often after the kubelet wrote their status) or lost (no longer free: the claim tries another pod).",
		}, []string{"outcome"}),
	}
	for _, o := range []string{takeRetried, takeLost} {
		m.takeConflicts.WithLabelValues(o)
	}
	for _, o := range []string{"warm", "cold", "none"} {
		for _, r := range []string{resultBound, resultFailed} {
			m.claims.WithLabelValues(o, r)
		}
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.claims, m.bind, m.step, m.expired, m.reserved, m.outdated, m.unheldDeleted, m.orphansDeleted, m.orphansUndeleted, m.takeConflicts} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering claim metrics: %w", err)
		}
	}
	return m, nil
}
