package agent

import (
	corev1 "k8s.io/api/core/v1"

	"sandbox.io/injector/api/v1alpha1"
)

// ReasonCreateFailed is the reason of the Warning Event an agent records on
// a pool when it cannot create the pool's warm pods (the API server, a
// webhook, a quota or the pod's validation refused them).
const ReasonCreateFailed = "CreateFailed"

// actionCreateWarmPod is the action of the pool's Events.
const actionCreateWarmPod = "CreateWarmPod"

// warn records a Warning Event on the pool; `kubectl describe sandboxpool`
// shows it. A refused template fails on every retry: the recorder folds
// the repeats into the first Event's series (one write, then one each
// half hour), so they are no storm.
func (r *PoolReconciler) warn(p *v1alpha1.SandboxPool, reason, msg string) {
	// No resourceVersion: the claim controller's status writes change it,
	// and the recorder would start a new Event for each.
	ref := &corev1.ObjectReference{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: "SandboxPool",
		Namespace: p.Namespace, Name: p.Name, UID: p.UID,
	}
	eventf(r.cfg.Recorder, ref, corev1.EventTypeWarning, reason, actionCreateWarmPod, msg)
}
