package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
)

// expiry is BoundAt plus spec.activeDeadlineSeconds, nil without a deadline.
func expiry(sbc *v1alpha1.SandboxClaim) *metav1.Time {
	if sbc.Status.BoundAt == nil || sbc.Spec.ActiveDeadlineSeconds == nil {
		return nil
	}
	t := metav1.NewTime(sbc.Status.BoundAt.Add(time.Duration(*sbc.Spec.ActiveDeadlineSeconds) * time.Second))
	return &t
}

// keepBound watches over a bound claim: it fails it when its pod is gone,
// follows a changed deadline, and ends it when the deadline passes.
func (r *ClaimReconciler) keepBound(ctx context.Context, sbc *v1alpha1.SandboxClaim) (ctrl.Result, error) {
	key := types.NamespacedName{Namespace: sbc.Namespace, Name: sbc.Status.PodName}
	var pod corev1.Pod
	err := r.client.Get(ctx, key, &pod)
	if podLost(sbc, &pod, err) {
		// The cache may lag the take that bound the claim: the pod's and
		// the claim's watch events come in no set order, so a claim just
		// bound can meet its pod still free, or not yet there. Only the
		// API server says the pod is lost.
		pod = corev1.Pod{}
		err = r.api.Get(ctx, key, &pod)
		if podLost(sbc, &pod, err) {
			return r.fail(ctx, sbc, string(sbc.Status.Origin), v1alpha1.ReasonPodLost,
				fmt.Sprintf("pod %s of the claim was deleted or replaced; create a new claim", sbc.Status.PodName))
		}
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("reading pod %s of claim %s/%s: %w", key.Name, sbc.Namespace, sbc.Name, err)
	}
	want := expiry(sbc)
	if want == nil {
		if sbc.Status.ExpiresAt != nil {
			return r.writeExpiry(ctx, sbc, nil)
		}
		return ctrl.Result{}, nil
	}
	if left := time.Until(want.Time); left > 0 {
		if sbc.Status.ExpiresAt == nil || !sbc.Status.ExpiresAt.Equal(want) {
			return r.writeExpiry(ctx, sbc, want)
		}
		return ctrl.Result{RequeueAfter: left}, nil
	}
	return r.expire(ctx, sbc, &pod, want)
}

// podLost reports whether pod, read with err, is no longer the bound
// claim's: gone, being deleted, or controlled by something else.
func podLost(sbc *v1alpha1.SandboxClaim, pod *corev1.Pod, err error) bool {
	if err != nil {
		return apierrors.IsNotFound(err)
	}
	return pod.DeletionTimestamp != nil || !controlledBy(pod, sbc)
}

// writeExpiry records a changed deadline (the claimant raised it).
func (r *ClaimReconciler) writeExpiry(ctx context.Context, sbc *v1alpha1.SandboxClaim, at *metav1.Time) (ctrl.Result, error) {
	up := sbc.DeepCopy()
	up.Status.ExpiresAt = at
	up.Status.ObservedGeneration = sbc.Generation
	if err := r.client.Status().Update(ctx, up); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{Requeue: true}, nil
		}
		return ctrl.Result{}, fmt.Errorf("writing the expiry of claim %s/%s: %w", sbc.Namespace, sbc.Name, err)
	}
	if at == nil {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: time.Until(at.Time)}, nil
}

// expire deletes the claim's pod and marks it Expired.
func (r *ClaimReconciler) expire(ctx context.Context, sbc *v1alpha1.SandboxClaim, pod *corev1.Pod, at *metav1.Time) (ctrl.Result, error) {
	if err := r.deletePod(ctx, pod); err != nil {
		return ctrl.Result{}, err
	}
	up := sbc.DeepCopy()
	up.Status.Phase = v1alpha1.ClaimExpired
	up.Status.ExpiresAt = at
	up.Status.ObservedGeneration = sbc.Generation
	meta.SetStatusCondition(&up.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionBound, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonExpired,
		Message: fmt.Sprintf("the lifetime of %ds ended at %s; pod %s was deleted", *sbc.Spec.ActiveDeadlineSeconds,
			at.UTC().Format(time.RFC3339), pod.Name),
	})
	if err := r.client.Status().Update(ctx, up); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{Requeue: true}, nil
		}
		return ctrl.Result{}, fmt.Errorf("writing the Expired status of claim %s/%s: %w", sbc.Namespace, sbc.Name, err)
	}
	r.metrics.expired.Inc()
	r.opts.Logger.Info("claim expired", "namespace", sbc.Namespace, "claim", sbc.Name, "pod", pod.Name)
	return ctrl.Result{RequeueAfter: r.opts.FinishedTTL}, nil
}

// collect deletes a Failed or Expired claim once Options.FinishedTTL has
// passed since it finished.
func (r *ClaimReconciler) collect(ctx context.Context, sbc *v1alpha1.SandboxClaim) (ctrl.Result, error) {
	finished := sbc.CreationTimestamp.Time
	if c := meta.FindStatusCondition(sbc.Status.Conditions, v1alpha1.ConditionBound); c != nil {
		finished = c.LastTransitionTime.Time
	}
	if left := time.Until(finished.Add(r.opts.FinishedTTL)); left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	if err := r.api.Delete(ctx, sbc, client.Preconditions{UID: &sbc.UID}); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("deleting finished claim %s/%s: %w", sbc.Namespace, sbc.Name, err)
	}
	return ctrl.Result{}, nil
}
