package agent

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"sandbox.io/injector/api/v1alpha1"
)

// PoolMetrics are the warm pool reconciler's Prometheus metrics: the
// per-node view of each pool (the pool's status holds only the totals,
// written by the claim controller). Register them with Register (the agent
// uses controller-runtime's metrics.Registry).
type PoolMetrics struct {
	// Pods is the pool's size on the node, by state: desired, warm (of the
	// current template), ready (warm and Ready), claimed, and outdated
	// (warm, of an older runner, still to be replaced).
	Pods *prometheus.GaugeVec
	// ObservedGeneration is the pool generation the node's agent last
	// acted on.
	ObservedGeneration *prometheus.GaugeVec
	// Reconciles counts the reconciles of each pool on the node: its spec,
	// its pods on the node and the node wake it, its status does not.
	Reconciles *prometheus.CounterVec
	// Created counts warm pods created.
	Created *prometheus.CounterVec
	// Deleted counts warm pods deleted, by reason (surplus, failed,
	// completed, stale, ineligible, stuck, runner-outdated).
	Deleted *prometheus.CounterVec
	// Errors counts failed API calls of the reconciler, by operation
	// (create, delete, probe).
	Errors *prometheus.CounterVec
	// RunnerProbes counts the dry-run creates that ask the webhook which
	// runner it injects while a pool is RunnerBehind, by result: current,
	// older (another runner, or none) or error (the dry-run failed).
	RunnerProbes *prometheus.CounterVec
}

// probeError is the result RunnerProbes counts for a failed dry-run (the
// others are InjectsCurrent and InjectsOlder).
const probeError = "error"

// NewPoolMetrics returns unregistered pool metrics.
func NewPoolMetrics() *PoolMetrics {
	return &PoolMetrics{
		Pods: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sandbox_agent_pool_pods",
			Help: "Pods of a warm pool on this node, by state: desired, warm (unclaimed, current template), ready (warm and Ready), claimed, and outdated (warm, of an older runner than the chart's, still to be replaced).",
		}, []string{"namespace", "pool", "node", "state"}),
		ObservedGeneration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sandbox_agent_pool_observed_generation",
			Help: "The generation (spec version) of a warm pool that the agent last acted on for this node.",
		}, []string{"namespace", "pool", "node"}),
		Reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_agent_pool_reconciles_total",
			Help: "Reconciles of a warm pool by this node's agent, woken by the pool's creation, deletion or spec change, its pods on the node, or the node; never by the pool's status.",
		}, []string{"namespace", "pool"}),
		Created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_agent_pool_pods_created_total",
			Help: "Warm pods the agent created.",
		}, []string{"namespace", "pool"}),
		Deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_agent_pool_pods_deleted_total",
			Help: "Warm pods the agent deleted, by reason: surplus, failed, completed, stale (older template), ineligible (node no longer matches), stuck (not Ready for too long) or runner-outdated (an older runner than the chart's).",
		}, []string{"namespace", "pool", "reason"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_agent_pool_errors_total",
			Help: "Failed API calls of the warm pool reconciler, by operation: create, delete, probe (a dry-run create asking the webhook which runner it injects).",
		}, []string{"op"}),
		RunnerProbes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sandbox_agent_pool_runner_probes_total",
			Help: "Dry-run creates of a warm pod by which the agent asks the webhook which runner it injects, while a replacement came out with an older runner than the chart's, by result: current (the chart's runner: the replacement is retried at once), older (another runner, or none) or error (the dry-run failed).",
		}, []string{"namespace", "pool", "result"}),
	}
}

// Register registers the metrics with reg.
func (m *PoolMetrics) Register(reg prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.Pods, m.ObservedGeneration, m.Reconciles, m.Created, m.Deleted, m.Errors, m.RunnerProbes} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("registering the pool metrics: %w", err)
	}
	return nil
}

func (m *PoolMetrics) set(p *v1alpha1.SandboxPool, node string, plan Plan) {
	for state, v := range map[string]int32{"desired": plan.Desired, "warm": plan.Warm, "ready": plan.Ready, "claimed": plan.Claimed, "outdated": plan.Outdated} {
		m.Pods.WithLabelValues(p.Namespace, p.Name, node, state).Set(float64(v))
	}
	m.ObservedGeneration.WithLabelValues(p.Namespace, p.Name, node).Set(float64(p.Generation))
}

// forget drops the gauges of a deleted pool.
func (m *PoolMetrics) forget(namespace, name string) {
	m.Pods.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "pool": name})
	m.ObservedGeneration.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "pool": name})
}
