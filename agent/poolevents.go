package agent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"sandbox.io/injector/api/v1alpha1"
)

// ReasonCreateFailed is the reason of the Warning Event an agent records on
// a pool when it cannot create the pool's warm pods (the API server, a
// webhook, a quota or the pod's validation refused them).
const ReasonCreateFailed = "CreateFailed"

// ReasonRunnerBehind is the reason of the Warning Event an agent records on
// a pool when a warm pod it created to replace one of an older runner came
// out with an older runner too: the webhook does not inject the agent's
// runner image (yet).
const ReasonRunnerBehind = "RunnerBehind"

// warnEvery bounds how often one agent records the same reason on one
// pool: a refused template fails on every retry.
const warnEvery = time.Minute

// warnings remembers when an agent last warned about each pool and reason.
type warnings struct {
	last map[types.NamespacedName]map[string]time.Time
}

// due reports whether a warning is due now, and if so marks it sent.
// Reconciles of one pool never run at once, and the map is per pool, but
// two pools may: the caller holds the reconciler's lock.
func (w *warnings) due(pool types.NamespacedName, reason string, now time.Time) bool {
	if w.last == nil {
		w.last = map[types.NamespacedName]map[string]time.Time{}
	}
	if w.last[pool] == nil {
		w.last[pool] = map[string]time.Time{}
	}
	if at, ok := w.last[pool][reason]; ok && now.Sub(at) < warnEvery {
		return false
	}
	w.last[pool][reason] = now
	return true
}

// warn records a Warning Event on the pool, as a recorder would, at most
// once every warnEvery per pool and reason; `kubectl describe sandboxpool`
// shows it. A failure to record is only logged.
func (r *PoolReconciler) warn(ctx context.Context, p *v1alpha1.SandboxPool, reason, msg string) {
	now := time.Now()
	r.mu.Lock()
	due := r.warned.due(types.NamespacedName{Namespace: p.Namespace, Name: p.Name}, reason, now)
	r.mu.Unlock()
	if !due {
		return
	}
	err := recordEvent(ctx, r.client, agentEvent{
		About: corev1.ObjectReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: "SandboxPool",
			Namespace: p.Namespace, Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion,
		},
		Namespace: p.Namespace, Node: r.cfg.NodeName,
		Type: corev1.EventTypeWarning, Reason: reason, Message: msg, At: now,
	})
	if err != nil {
		r.cfg.Log.Warn("recording an event on a pool", "namespace", p.Namespace, "pool", p.Name, "reason", reason, "err", err)
	}
}
