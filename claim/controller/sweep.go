package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/pool"
)

// ReasonUnheldKeyPodDeleted is the reason of the Event on a pool whose warm
// pod of an unheld claim key the controller deleted.
const ReasonUnheldKeyPodDeleted = "UnheldKeyPodDeleted"

// DefaultUnheldKeyGrace is how long a warm pod injected under a claim key
// the controller does not hold is kept, unless told otherwise.
const DefaultUnheldKeyGrace = time.Minute

// sweepRecheck is how soon a pool with warm pods of an unheld key that are
// not due for deletion yet is looked at again.
const sweepRecheck = 5 * time.Second

// sweepUnheld deletes the warm pods of pool p (among pods, the pool's pods
// in the cache) injected under a claim key the controller does not hold:
// no claim can ever take them, yet each holds a warm slot of its node, so
// its agent makes no pod the controller can hand out in its place. A pod
// is deleted only once the controller's keys were confirmed (read from the
// claim key Secret) at least Options.UnheldKeyGrace after the pod was
// created: its key was in the Secret when the webhook injected it, so it
// has been taken out since, or was never the release's (a replica that
// made a key of its own). A pod injected by a replica that loaded a new
// key before the controller did is newer than the controller's last
// confirmation, and is left for the next. unheld are the warm pods of an
// unheld key (unheldKeyPods). It returns how soon to look again (0: no pod
// is waiting).
func (r *PoolStatusReconciler) sweepUnheld(ctx context.Context, p *v1alpha1.SandboxPool, pods []corev1.Pod, unheld map[types.UID]bool) (time.Duration, error) {
	if r.unheldGrace < 0 {
		return 0, nil
	}
	confirmed := r.keys.Confirmed()
	var recheck time.Duration
	for i := range pods {
		pod := &pods[i]
		if !unheld[pod.UID] || !madeByAgent(p, pod) {
			continue
		}
		due := pod.CreationTimestamp.Add(r.unheldGrace)
		if !confirmed.After(due) {
			if wait := max(time.Until(due), 0) + sweepRecheck; recheck == 0 || wait < recheck {
				recheck = wait
			}
			continue
		}
		// Conditioned on what the cache saw: a pod a claim took meanwhile
		// (under a key held then) is not deleted.
		err := r.client.Delete(ctx, pod, client.Preconditions{UID: &pod.UID, ResourceVersion: &pod.ResourceVersion})
		switch {
		case err == nil:
			r.unheldDeleted.Inc()
			r.recorder.Eventf(p, pod, corev1.EventTypeNormal, ReasonUnheldKeyPodDeleted, "Delete",
				"deleted warm pod %s (node %s): injected under a claim key the claim controller does not hold (rotated away), it could never be claimed; the node agent makes one under the current key", pod.Name, pod.Spec.NodeName)
			r.log.Info("deleted a warm pod injected under a claim key the controller does not hold; the node agent makes one under the current key",
				"namespace", pod.Namespace, "pool", p.Name, "pod", pod.Name, "node", pod.Spec.NodeName,
				"age", time.Since(pod.CreationTimestamp.Time).Round(time.Second), "keys", r.keys.Keys().String())
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			// Gone or changed since the cache saw it: its next event
			// brings the pool back here.
		default:
			return 0, fmt.Errorf("deleting warm pod %s/%s of an unheld claim key: %w", pod.Namespace, pod.Name, err)
		}
	}
	return recheck, nil
}

// madeByAgent reports whether pod is one the node agent made for p: p is its
// controller and the webhook gave it a claim nonce and a runner verifier.
// A runner with no verifier on its command line speaks another claim
// protocol and is let go by a claim instead (rollout.go).
func madeByAgent(p *v1alpha1.SandboxPool, pod *corev1.Pod) bool {
	ref := metav1.GetControllerOf(pod)
	return ref != nil && ref.UID == p.UID && ref.Kind == "SandboxPool" &&
		pod.Annotations[v1alpha1.AnnotationClaimNonce] != "" && pool.ClaimVerifier(pod) != ""
}
