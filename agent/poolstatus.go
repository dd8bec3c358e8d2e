package agent

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
)

// ConditionReady is the type of a pool's condition that says whether every
// desired warm pod of every node is Ready.
const ConditionReady = "Ready"

// Reasons of the Ready condition.
const (
	ReasonAllReady = "AllReady" // ready == desired
	ReasonFilling  = "Filling"  // ready < desired
)

// totalsRetries bounds the re-reads after conflicting totals updates; each
// conflict means another agent wrote in between, so a few suffice.
const totalsRetries = 8

// writeStatus writes this node's entry of the pool's status.nodes by
// server-side apply with the node's own field manager, so that no agent can
// overwrite another node's entry; then it brings the totals up to date.
// An entry is written only when its counts change; a node that is not
// eligible and has no pod of the pool drops its entry.
func (r *PoolReconciler) writeStatus(ctx context.Context, p *v1alpha1.SandboxPool, plan Plan) error {
	node := r.cfg.NodeName
	want := v1alpha1.NodePoolStatus{
		Node: node, Desired: plan.Desired, Warm: plan.Warm, Ready: plan.Ready, Claimed: plan.Claimed,
		ObservedGeneration: p.Generation,
	}
	keep := plan.Eligible || plan.Warm+plan.Claimed > 0
	var have *v1alpha1.NodePoolStatus
	for i := range p.Status.Nodes {
		if p.Status.Nodes[i].Node == node {
			have = &p.Status.Nodes[i]
		}
	}
	current := p
	if keep != (have != nil) || keep && !sameCounts(*have, want) {
		applied, err := r.applyEntry(ctx, p, want, keep)
		if err != nil {
			return err
		}
		current = applied
	}
	return r.writeTotals(ctx, current)
}

func sameCounts(a, b v1alpha1.NodePoolStatus) bool {
	return a.Desired == b.Desired && a.Warm == b.Warm && a.Ready == b.Ready && a.Claimed == b.Claimed &&
		a.ObservedGeneration == b.ObservedGeneration
}

// applyEntry server-side applies the node's entry (or, with keep false, no
// entry, which removes the one this manager owned) and returns the pool as
// the API server stored it.
func (r *PoolReconciler) applyEntry(ctx context.Context, p *v1alpha1.SandboxPool, e v1alpha1.NodePoolStatus, keep bool) (*v1alpha1.SandboxPool, error) {
	status := map[string]any{}
	if keep {
		status["nodes"] = []any{map[string]any{
			"node":               e.Node,
			"desired":            int64(e.Desired),
			"warm":               int64(e.Warm),
			"ready":              int64(e.Ready),
			"claimed":            int64(e.Claimed),
			"observedGeneration": e.ObservedGeneration,
			"lastUpdateTime":     time.Now().UTC().Format(time.RFC3339),
		}}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       "SandboxPool",
		"metadata":   map[string]any{"name": p.Name, "namespace": p.Namespace},
		"status":     status,
	}}
	if err := r.client.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(FieldManager(r.cfg.NodeName)), client.ForceOwnership); err != nil {
		r.cfg.Metrics.Errors.WithLabelValues("status").Inc()
		return nil, fmt.Errorf("applying node %s's status entry of pool %s/%s: %w", r.cfg.NodeName, p.Namespace, p.Name, err)
	}
	var applied v1alpha1.SandboxPool
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &applied); err != nil {
		return nil, fmt.Errorf("reading the applied status of pool %s/%s: %w", p.Namespace, p.Name, err)
	}
	return &applied, nil
}

// writeTotals sets status.desired, status.ready and the Ready condition
// from status.nodes, in an update conditioned on the resourceVersion the
// entries were read at: the totals always match the entries they were
// computed from. A conflict means another agent changed the status since;
// the pool is read again and the totals computed again.
func (r *PoolReconciler) writeTotals(ctx context.Context, p *v1alpha1.SandboxPool) error {
	for range totalsRetries {
		next := p.DeepCopy()
		pruned := r.pruneGoneNode(ctx, next)
		if !setTotals(next) && !pruned {
			return nil
		}
		err := r.client.Status().Update(ctx, next, client.FieldOwner(FieldManager(r.cfg.NodeName)))
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) {
			r.cfg.Metrics.Errors.WithLabelValues("status").Inc()
			return fmt.Errorf("updating the totals of pool %s/%s: %w", p.Namespace, p.Name, err)
		}
		var fresh v1alpha1.SandboxPool
		if err := r.api.Get(ctx, client.ObjectKeyFromObject(p), &fresh); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("reading pool %s/%s again: %w", p.Namespace, p.Name, err)
		}
		p = &fresh
	}
	return fmt.Errorf("updating the totals of pool %s/%s: still conflicting after %d tries", p.Namespace, p.Name, totalsRetries)
}

// setTotals recomputes the totals and the Ready condition of p from its
// node entries, and reports whether anything changed.
func setTotals(p *v1alpha1.SandboxPool) bool {
	var desired, ready int32
	for _, n := range p.Status.Nodes {
		desired += n.Desired
		ready += n.Ready
	}
	cond := metav1.Condition{
		Type: ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonAllReady,
		Message:            fmt.Sprintf("%d of %d warm pods ready on %d nodes", ready, desired, len(p.Status.Nodes)),
		ObservedGeneration: p.Generation,
	}
	if ready < desired {
		cond.Status, cond.Reason = metav1.ConditionFalse, ReasonFilling
	}
	changed := p.Status.Desired != desired || p.Status.Ready != ready
	p.Status.Desired, p.Status.Ready = desired, ready
	if old := meta.FindStatusCondition(p.Status.Conditions, ConditionReady); old == nil || old.Status != cond.Status ||
		old.Reason != cond.Reason || old.Message != cond.Message || old.ObservedGeneration != cond.ObservedGeneration {
		meta.SetStatusCondition(&p.Status.Conditions, cond)
		changed = true
	}
	return changed
}

// nodeChecks remembers, per node name, when the agent last asked the API
// server whether the node exists, and the answer.
type nodeChecks struct {
	mu   sync.Mutex
	seen map[string]nodeCheck
}

type nodeCheck struct {
	at   time.Time
	gone bool
}

// watchedNode is the status entry this agent checks: the node before its
// own among the pool's entries sorted by name, wrapping around, so that
// every entry has exactly one checker. "" when the agent has no entry or
// is alone.
func watchedNode(p *v1alpha1.SandboxPool, self string) string {
	names := make([]string, 0, len(p.Status.Nodes))
	for _, n := range p.Status.Nodes {
		names = append(names, n.Node)
	}
	slices.Sort(names)
	i := slices.Index(names, self)
	if i < 0 || len(names) < 2 {
		return ""
	}
	return names[(i+len(names)-1)%len(names)]
}

// pruneGoneNode drops from p the entry of the node this agent watches when
// that node no longer exists (its agent is gone with it, and its counts
// would stay in the totals for ever). It asks the API server at most once
// per NodeCheckEvery per node, and reports whether it dropped an entry. A
// failed check keeps the entry.
func (r *PoolReconciler) pruneGoneNode(ctx context.Context, p *v1alpha1.SandboxPool) bool {
	name := watchedNode(p, r.cfg.NodeName)
	if name == "" || !r.nodeGone(ctx, name) {
		return false
	}
	p.Status.Nodes = slices.DeleteFunc(p.Status.Nodes, func(n v1alpha1.NodePoolStatus) bool { return n.Node == name })
	r.cfg.Log.Info("dropping the status entry of a removed node", "namespace", p.Namespace, "pool", p.Name, "removed", name)
	return true
}

func (r *PoolReconciler) nodeGone(ctx context.Context, name string) bool {
	now := time.Now()
	r.nodes.mu.Lock()
	c, ok := r.nodes.seen[name]
	r.nodes.mu.Unlock()
	// A gone node is asked about again too: a node of the same name may
	// register anew, and its agent writes its entry again.
	if ok && now.Sub(c.at) < r.cfg.NodeCheckEvery {
		return c.gone
	}
	c.gone = false
	var node corev1.Node
	err := r.api.Get(ctx, client.ObjectKey{Name: name}, &node)
	switch {
	case err == nil:
	case apierrors.IsNotFound(err):
		c.gone = true
	default:
		r.cfg.Log.Warn("checking whether a node of a pool's status still exists", "node", name, "err", err)
		return false
	}
	r.nodes.mu.Lock()
	defer r.nodes.mu.Unlock()
	if r.nodes.seen == nil {
		r.nodes.seen = map[string]nodeCheck{}
	}
	r.nodes.seen[name] = nodeCheck{at: now, gone: c.gone}
	return c.gone
}
