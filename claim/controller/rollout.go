package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner/api"
)

// During a rollout claim controllers and runners of two releases meet. A
// runner of another claim protocol refuses the claim with 400 and names its
// protocol (api.Error.ClaimProtocol); a runner of a release before that
// field refuses without naming one. Neither is the claim's fault: the claim
// lets the pod go and waits for a runner it can talk to, instead of
// failing.

// outdatedRetry is how soon a claim that lost a pod to an older runner
// looks again for a current one.
const outdatedRetry = time.Second

// protocolError is a runner that cannot take a claim of this controller's
// protocol.
type protocolError struct {
	pod string
	// image is the pod's runner image, "" when its status names none.
	image string
	// runner is the claim protocol the runner named; 0 when it named none.
	runner, want int
	// outdated: the pod runs an older runner than Options.RunnerImage,
	// which the node agents are replacing.
	outdated bool
	// current is Options.RunnerImage.
	current string
	// said is the runner's own message.
	said string
}

func (e *protocolError) Error() string {
	speaks := fmt.Sprintf("speaks claim protocol %d", e.runner)
	if e.runner == 0 {
		speaks = "names no claim protocol (a release before protocol 2 was named)"
	}
	image := e.image
	if image == "" {
		image = "of an earlier release"
	}
	said := ""
	if e.said != "" {
		said = " (the runner said: " + e.said + ")"
	}
	if e.outdated {
		return fmt.Sprintf("the runner of pod %s (%s) %s; this controller needs %d: the warm pods are being replaced with the new runner (%s); retrying%s",
			e.pod, image, speaks, e.want, e.current, said)
	}
	return fmt.Sprintf("the runner of pod %s (%s) %s; this controller needs %d: the webhook injects a runner of another claim protocol than its claim controller speaks: "+
		"install the webhook and runner images of one release (helm upgrade with the chart's defaults)%s", e.pod, image, speaks, e.want, said)
}

// protocolMismatch classifies a runner's answer to POST /claim: a
// *protocolError when the runner cannot talk this controller's protocol,
// nil otherwise. A runner names its protocol in a refusal; an older runner
// that names none is taken for one of another protocol when it refuses
// with 400 or 401 (protocol 1 was authorized by a pool token).
func (r *ClaimReconciler) protocolMismatch(pod *corev1.Pod, code int, body []byte) *protocolError {
	if code == http.StatusOK {
		return nil
	}
	outdated := pool.RunnerOutdated(pod, r.opts.RunnerImage)
	runner := api.ClaimProtocolOf(body)
	switch {
	case runner != 0 && runner != r.opts.claimProtocol && code == http.StatusBadRequest:
	case runner == 0 && outdated && (code == http.StatusBadRequest || code == http.StatusUnauthorized):
	default:
		return nil
	}
	var said api.Error
	_ = json.Unmarshal(body, &said)
	return &protocolError{pod: pod.Name, image: pool.RunnerImage(pod), runner: runner, want: r.opts.claimProtocol,
		outdated: outdated, current: r.opts.RunnerImage, said: said.Error}
}

// dropOutdated lets go of a pod whose older runner cannot take the claim:
// it deletes it (the node agent replaces it with a current runner), and
// the claim stays Pending, takes only current pods from now on, and does
// not count the pod among its Options.RunnerAttempts.
func (r *ClaimReconciler) dropOutdated(ctx context.Context, sbc *v1alpha1.SandboxClaim, pod *corev1.Pod, perr *protocolError) (ctrl.Result, error) {
	if err := r.deletePod(ctx, pod); err != nil {
		return ctrl.Result{}, err
	}
	// Its reservation ends when the cache shows the deletion.
	r.setTaken(sbc.UID, nil)
	r.mu.Lock()
	r.needCurrent[sbc.UID] = perr.Error() + fmt.Sprintf(" (the claim waits for a Ready warm pod with runner %s, or a cold pod where the claim allows one)", r.opts.RunnerImage)
	r.mu.Unlock()
	r.metrics.outdated.Inc()
	return r.setWaiting(ctx, sbc, v1alpha1.ReasonRunnerOutdated, r.needCurrent[sbc.UID], outdatedRetry)
}

// setWaiting says the claim is Pending for reason, with no pod yet, and
// looks again after outdatedRetry.
func (r *ClaimReconciler) setWaiting(ctx context.Context, sbc *v1alpha1.SandboxClaim, reason, msg string, retry time.Duration) (ctrl.Result, error) {
	up := sbc.DeepCopy()
	up.Status.Phase = v1alpha1.ClaimPending
	up.Status.PodName = ""
	up.Status.Origin = ""
	up.Status.ObservedGeneration = sbc.Generation
	meta.SetStatusCondition(&up.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionBound, Status: metav1.ConditionFalse, Reason: reason, Message: msg,
	})
	requeue := ctrl.Result{RequeueAfter: retry}
	if equalStatus(&sbc.Status, &up.Status) {
		return requeue, nil
	}
	if err := r.client.Status().Update(ctx, up); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("writing the Pending status of claim %s/%s: %w", sbc.Namespace, sbc.Name, err)
	}
	return requeue, nil
}
