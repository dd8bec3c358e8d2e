package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/pool"
)

// ClaimReconciler binds SandboxClaims to pods and ends them.
type ClaimReconciler struct {
	opts    Options
	client  client.Client // reads from the claim cache
	api     client.Client // uncached: claimants' Secrets
	metrics *metrics

	mu sync.Mutex
	// reserved are the warm pods a claim is taking or has taken, so that
	// concurrent claims pick different pods instead of racing on one. A
	// reservation lasts until the cache shows the pod taken, deleted or
	// gone (releaseWhenTaken), or the adoption failed: a claim that reads
	// a cache behind the writes never tries a pod another claim holds.
	reserved map[types.UID]types.NamespacedName
	// attempts counts, per claim, the pods whose runner did not take it.
	attempts map[types.UID]int
	// taken holds, per claim, the pod it took until its Bound status is
	// written, so that a retry before the cache shows the pod as the
	// claim's does not take a second one.
	taken map[types.UID]types.NamespacedName
	// needCurrent marks the claims that lost a pod to a runner of another
	// claim protocol, with why: they take only pods of Options.RunnerImage
	// (or a cold pod) from then on.
	needCurrent map[types.UID]string
	// names are the claims attempts, taken, needCurrent and bindings hold
	// state of, so that a claim deleted while Pending (only its name is
	// left then) is forgotten too.
	names map[types.UID]types.NamespacedName
	// bindings are what the controller measured of each pending claim's
	// binding so far.
	bindings map[types.UID]*bindTimes
	// justBound are the claims whose Bound status this controller wrote
	// and whose cached copy may still say Pending: a reconcile in between
	// (their pod's update queues one) waits for the cache instead of
	// handing the runner the claim again.
	justBound map[types.UID]justBound
}

// bindTimes is what the controller measured of a pending claim's binding:
// when it first tried to bind it (the bind duration counts from there:
// creationTimestamp has one-second precision), and how long the pod's
// updates (take) and the runner's POST /claim (runner) took so far, all
// attempts together, which the "claim bound" log line reports beside the
// status write's own time, so that a slow binding says where its time
// went.
type bindTimes struct {
	seen         time.Time
	take, runner time.Duration
}

type justBound struct {
	name types.NamespacedName
	at   time.Time
}

// justBoundWait bounds how long a claim's cached copy may lag its Bound
// status write before binding is tried again (it finds its own pod and the
// runner answers the repeated claim as before).
const justBoundWait = 10 * time.Second

// newClaimReconciler is a ClaimReconciler with empty state.
func newClaimReconciler(opts Options, cached, uncached client.Client, m *metrics) *ClaimReconciler {
	return &ClaimReconciler{
		opts: opts, client: cached, api: uncached, metrics: m,
		reserved: map[types.UID]types.NamespacedName{}, attempts: map[types.UID]int{},
		taken: map[types.UID]types.NamespacedName{}, needCurrent: map[types.UID]string{},
		names: map[types.UID]types.NamespacedName{}, bindings: map[types.UID]*bindTimes{},
		justBound: map[types.UID]justBound{},
	}
}

// Reconcile moves one claim along: bind it, keep it, end it.
func (r *ClaimReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var sbc v1alpha1.SandboxClaim
	if err := r.client.Get(ctx, req.NamespacedName, &sbc); err != nil {
		if apierrors.IsNotFound(err) {
			r.forgetClaim(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if sbc.DeletionTimestamp != nil {
		return r.releaseDeleting(ctx, &sbc)
	}
	if r.waitForBoundCopy(&sbc) {
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	switch sbc.Status.Phase {
	case v1alpha1.ClaimFailed, v1alpha1.ClaimExpired:
		return r.collect(ctx, &sbc)
	case v1alpha1.ClaimBound:
		return r.keepBound(ctx, &sbc)
	default:
		return r.bind(ctx, &sbc)
	}
}

// releaseDeleting deletes the pods of a claim being deleted: deleting a
// claim releases its sandbox at once. The garbage collector would delete
// them only once the claim is gone, which a finalizer (the claimant may add
// one) holds off for as long as it stays, while the claim, being deleted,
// is neither bound to anything nor expired any more.
func (r *ClaimReconciler) releaseDeleting(ctx context.Context, sbc *v1alpha1.SandboxClaim) (ctrl.Result, error) {
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(sbc.Namespace), client.MatchingFields{indexClaim: sbc.Namespace + "/" + sbc.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the pods of claim %s/%s from the cache: %w", sbc.Namespace, sbc.Name, err)
	}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if !controlledBy(pod, sbc) || pod.DeletionTimestamp != nil {
			continue
		}
		if err := r.deletePod(ctx, pod); err != nil {
			return ctrl.Result{}, err
		}
		r.opts.Logger.Info("claim being deleted: deleted its pod", "namespace", sbc.Namespace, "claim", sbc.Name, "pod", pod.Name,
			"finalizers", sbc.Finalizers)
	}
	return ctrl.Result{}, nil
}

// bind binds a pending claim: to the pod it already owns (a cold pod, or
// a bind an earlier leader began), else to a free warm pod, else to a new
// cold pod.
func (r *ClaimReconciler) bind(ctx context.Context, sbc *v1alpha1.SandboxClaim) (ctrl.Result, error) {
	r.mu.Lock()
	r.names[sbc.UID] = types.NamespacedName{Namespace: sbc.Namespace, Name: sbc.Name}
	if _, ok := r.bindings[sbc.UID]; !ok {
		r.bindings[sbc.UID] = &bindTimes{seen: time.Now()}
	}
	r.mu.Unlock()
	if pod, err := r.ownedPod(ctx, sbc); err != nil || pod != nil {
		if err != nil {
			return ctrl.Result{}, err
		}
		return r.finishBinding(ctx, sbc, pod, "")
	}
	var p v1alpha1.SandboxPool
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: sbc.Namespace, Name: sbc.Spec.PoolName}, &p); err != nil {
		if apierrors.IsNotFound(err) {
			return r.fail(ctx, sbc, "", v1alpha1.ReasonPoolNotFound,
				fmt.Sprintf("SandboxPool %q does not exist in namespace %s", sbc.Spec.PoolName, sbc.Namespace))
		}
		return ctrl.Result{}, err
	}
	// The digest before a pod is taken: a bad secretRef must not cost a
	// warm pod. It is handed on, so a Secret is read once per binding.
	digest, reason, msg := r.tokenDigest(ctx, sbc)
	if reason != "" {
		return r.fail(ctx, sbc, "", reason, msg)
	}
	r.mu.Lock()
	why, onlyCurrent := r.needCurrent[sbc.UID]
	r.mu.Unlock()
	taken, unheld, err := r.takeWarm(ctx, sbc, &p, onlyCurrent)
	if err != nil {
		return ctrl.Result{}, err
	}
	if taken != nil {
		return r.finishBinding(ctx, sbc, taken, digest)
	}
	note := ""
	if unheld > 0 {
		note = fmt.Sprintf(" (%d Ready warm pods of the pool were injected under a claim key this controller does not hold: %s)", unheld, unheldAdvice(&p, r.opts.UnheldKeyGrace))
		r.opts.Logger.Info("warm pods injected under a claim key the controller does not hold were passed over", "namespace", sbc.Namespace, "claim", sbc.Name, "pool", p.Name, "pods", unheld, "keys", r.opts.Keys.Keys().String())
	}
	if onlyCurrent && !sbc.Spec.ColdStartAllowed() {
		return r.setWaiting(ctx, sbc, v1alpha1.ReasonRunnerOutdated, why, outdatedRetry)
	}
	if !sbc.Spec.ColdStartAllowed() {
		return r.fail(ctx, sbc, "", v1alpha1.ReasonNoWarmPod,
			fmt.Sprintf("no warm pod of pool %s is free and the claim forbids a cold start (spec.coldStart: Never)%s", p.Name, note))
	}
	return r.startCold(ctx, sbc, &p)
}

// ownedPod is the pod the claim controls, if any.
func (r *ClaimReconciler) ownedPod(ctx context.Context, sbc *v1alpha1.SandboxClaim) (*corev1.Pod, error) {
	r.mu.Lock()
	name, ok := r.taken[sbc.UID]
	r.mu.Unlock()
	if ok {
		var pod corev1.Pod
		if err := r.api.Get(ctx, name, &pod); err != nil {
			if apierrors.IsNotFound(err) {
				r.setTaken(sbc.UID, nil)
				return nil, nil
			}
			return nil, fmt.Errorf("reading pod %s of claim %s/%s: %w", name, sbc.Namespace, sbc.Name, err)
		}
		return &pod, nil
	}
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(sbc.Namespace), client.MatchingFields{indexClaim: sbc.Namespace + "/" + sbc.Name}); err != nil {
		return nil, fmt.Errorf("listing the pods of claim %s/%s from the cache: %w", sbc.Namespace, sbc.Name, err)
	}
	for i := range pods.Items {
		// A pod being deleted is not the claim's any more: one it let go
		// (dropPod, dropOutdated) stays for its grace period, and the
		// claim takes another meanwhile. The cache may not show the
		// deletion yet (a pod let go a moment ago, whose runner still
		// answers), so the API server has the last word.
		cached := &pods.Items[i]
		if !controlledBy(cached, sbc) || cached.DeletionTimestamp != nil {
			continue
		}
		var pod corev1.Pod
		if err := r.api.Get(ctx, client.ObjectKeyFromObject(cached), &pod); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("reading pod %s of claim %s/%s: %w", cached.Name, sbc.Namespace, sbc.Name, err)
		}
		if pod.UID == cached.UID && controlledBy(&pod, sbc) && pod.DeletionTimestamp == nil {
			return &pod, nil
		}
	}
	return nil, nil
}

// controlledBy reports whether sbc is pod's controller.
func controlledBy(pod *corev1.Pod, sbc *v1alpha1.SandboxClaim) bool {
	ref := metav1.GetControllerOf(pod)
	return ref != nil && ref.UID == sbc.UID
}

// claimable reports whether a warm pod of pool p may be bound: the pool owns
// it as controller (labels alone never make a pod claimable), it has a claim
// nonce from the webhook, it is Ready on the pool's current template, and
// no other claim holds it.
func claimable(p *v1alpha1.SandboxPool, pod *corev1.Pod) bool {
	ref := metav1.GetControllerOf(pod)
	return ref != nil && ref.UID == p.UID && ref.Kind == "SandboxPool" &&
		pod.Annotations[v1alpha1.AnnotationClaimNonce] != "" &&
		pool.Claimable(p, pod)
}

// unheldAdvice says what becomes of the warm pods of a pool injected under a
// claim key the controller does not hold (grace: Options.UnheldKeyGrace),
// or what to do about them.
func unheldAdvice(p *v1alpha1.SandboxPool, grace time.Duration) string {
	if grace >= 0 {
		return fmt.Sprintf("the controller deletes such a pod once it has read the claim key Secret %s after the pod's creation without finding its key (one rotated away), and the node agents make new ones under the current key", grace)
	}
	// Claimed pods keep their labels (pool.State): the pool must still be
	// their owner.
	return fmt.Sprintf("if that key was rotated away, delete the pool's warm pods (kubectl -n %s get pods -l %s=%s,%s=%s -o jsonpath='%s' | xargs -r kubectl -n %s delete pod) and the node agents make new ones under the current key",
		p.Namespace, v1alpha1.LabelPool, p.Name, v1alpha1.LabelState, v1alpha1.StateWarm, warmPodNames, p.Namespace)
}

// warmPodNames is a kubectl jsonpath of the names of the pods still owned
// by their pool: those no claim has taken.
const warmPodNames = `{range .items[?(@.metadata.ownerReferences[0].kind=="SandboxPool")]}{.metadata.name}{"\n"}{end}`

// takeWarm takes a free warm pod of p for the claim with one conditional
// update; nil when none is free. Pods of the current runner
// (Options.RunnerImage) come first; with onlyCurrent, no other is taken.
// Pods injected under a claim key the controller does not hold are passed
// over and counted in unheld.
func (r *ClaimReconciler) takeWarm(ctx context.Context, sbc *v1alpha1.SandboxClaim, p *v1alpha1.SandboxPool, onlyCurrent bool) (taken *corev1.Pod, unheld int, err error) {
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(p.Namespace), client.MatchingFields{indexWarm: p.Namespace + "/" + p.Name}); err != nil {
		return nil, 0, fmt.Errorf("listing the warm pods of pool %s/%s from the cache: %w", p.Namespace, p.Name, err)
	}
	// Start at a random pod, so that claims spread over the pool's nodes.
	n := len(pods.Items)
	start := 0
	if n > 0 {
		start = rand.IntN(n)
	}
	key := types.NamespacedName{Namespace: sbc.Namespace, Name: sbc.Name}
	// Two passes over the same order: the current runner's pods, then
	// (unless onlyCurrent) those of an older one.
	for i := range 2 * n {
		pod := &pods.Items[(start+i)%n]
		if outdated := pool.RunnerOutdated(pod, r.opts.RunnerImage); outdated != (i >= n) || outdated && onlyCurrent {
			continue
		}
		if !claimable(p, pod) {
			continue
		}
		if !keyHeld(r.opts.Keys, pod) {
			unheld++
			continue
		}
		if !r.reserve(pod.UID, key) {
			continue
		}
		taken, err := r.adopt(ctx, sbc, pod, func(fresh *corev1.Pod) bool {
			return claimable(p, fresh) && keyHeld(r.opts.Keys, fresh) && !(onlyCurrent && pool.RunnerOutdated(fresh, r.opts.RunnerImage))
		})
		if err != nil || taken != nil {
			if taken == nil {
				r.unreserve(pod.UID)
			}
			return taken, unheld, err
		}
		// Changed or gone since the cache saw it: the next one.
		r.unreserve(pod.UID)
	}
	return nil, unheld, nil
}

// observeStep records a step of a claim's binding that took d in the step
// histogram and, for a take or a runner call of a pending claim, in its
// bindTimes (markBound logs its own status write).
func (r *ClaimReconciler) observeStep(claim types.UID, step string, d time.Duration) {
	r.metrics.step.WithLabelValues(step).Observe(d.Seconds())
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bindings[claim]
	if b == nil {
		return
	}
	switch step {
	case stepTake:
		b.take += d
	case stepRunner:
		b.runner += d
	}
}

// setTaken records (pod non-nil) or forgets the pod a claim took.
func (r *ClaimReconciler) setTaken(claim types.UID, pod *corev1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pod == nil {
		delete(r.taken, claim)
		return
	}
	r.taken[claim] = types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
}

func (r *ClaimReconciler) reserve(uid types.UID, claim types.NamespacedName) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if holder, ok := r.reserved[uid]; ok && holder != claim {
		return false
	}
	r.reserved[uid] = claim
	r.metrics.reserved.Set(float64(len(r.reserved)))
	return true
}

// releaseWhenTaken ends the reservation of a pod the cache shows is no
// longer free: taken by a claim, being deleted, or (deleted) gone.
func (r *ClaimReconciler) releaseWhenTaken(pod *corev1.Pod, deleted bool) {
	if deleted || pod.DeletionTimestamp != nil || pool.State(pod) != v1alpha1.StateWarm {
		r.unreserve(pod.UID)
	}
}

func (r *ClaimReconciler) unreserve(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.reserved, uid)
	r.metrics.reserved.Set(float64(len(r.reserved)))
}

// waitForBoundCopy reports whether sbc is a stale cached copy of a claim
// this controller bound moments ago; it forgets the claim once the cache
// shows it bound, or after justBoundWait.
func (r *ClaimReconciler) waitForBoundCopy(sbc *v1alpha1.SandboxClaim) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.justBound[sbc.UID]
	if !ok {
		return false
	}
	pending := sbc.Status.Phase == "" || sbc.Status.Phase == v1alpha1.ClaimPending
	if pending && time.Since(b.at) < justBoundWait {
		return true
	}
	delete(r.justBound, sbc.UID)
	return false
}

// forgetClaim drops what memory holds of a claim that is gone.
func (r *ClaimReconciler) forgetClaim(claim types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for uid, holder := range r.reserved {
		if holder == claim {
			delete(r.reserved, uid)
		}
	}
	r.metrics.reserved.Set(float64(len(r.reserved)))
	for uid, name := range r.names {
		if name == claim {
			r.dropState(uid)
		}
	}
	for uid, b := range r.justBound {
		if b.name == claim {
			delete(r.justBound, uid)
		}
	}
}

// dropState forgets the binding state of claim uid (r.mu held): it is
// bound, failed or gone.
func (r *ClaimReconciler) dropState(uid types.UID) {
	delete(r.attempts, uid)
	delete(r.taken, uid)
	delete(r.needCurrent, uid)
	delete(r.names, uid)
	delete(r.bindings, uid)
}

// adopt makes pod the claim's, conditioned on the resourceVersion the cache
// saw: the claim its controller and only owner, which is what makes the pod
// claimed (pool.State), so that deleting the claim deletes the pod (the
// garbage collector deletes a dependent only once every owner is gone, so
// the pool must not stay one). Nothing else changes (its labels only with
// Options.RelabelOnTake): the kubelet ignores an owner reference change,
// where a label or annotation change makes it re-sync the pod, and
// NetworkPolicy implementations recompute on a label change.
//
// A pod changed since the cache saw it is most often one whose status the
// kubelet just wrote, and still free: it is read again from the API server
// and taken if stillFree says it still may be (up to takeAttempts updates),
// so that a claim does not pass over a free pod and fall back to a cold
// start, or fail NoWarmPod, while the pool has one; one the claim took
// already (an update whose answer was lost) is the claim's. It returns
// nil, nil when the pod is no longer free or went away.
func (r *ClaimReconciler) adopt(ctx context.Context, sbc *v1alpha1.SandboxClaim, pod *corev1.Pod, stillFree func(*corev1.Pod) bool) (*corev1.Pod, error) {
	for attempt := 1; ; attempt++ {
		up := pod.DeepCopy()
		if r.opts.RelabelOnTake {
			up.Labels[v1alpha1.LabelState] = v1alpha1.StateClaimed
			up.Labels[v1alpha1.LabelOrigin] = v1alpha1.OriginWarm
		}
		up.OwnerReferences = []metav1.OwnerReference{claimOwnerRef(sbc)}
		start := time.Now()
		err := r.client.Update(ctx, up)
		r.observeStep(sbc.UID, stepTake, time.Since(start))
		switch {
		case err == nil:
			r.setTaken(sbc.UID, up)
			return up, nil
		case apierrors.IsNotFound(err):
			return nil, nil
		case !apierrors.IsConflict(err):
			return nil, fmt.Errorf("taking pod %s/%s for claim %s: %w", pod.Namespace, pod.Name, sbc.Name, err)
		}
		var fresh corev1.Pod
		if attempt < takeAttempts {
			if err := r.api.Get(ctx, client.ObjectKeyFromObject(pod), &fresh); err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("reading pod %s/%s again after it changed under claim %s: %w", pod.Namespace, pod.Name, sbc.Name, err)
			}
		}
		if fresh.UID == pod.UID && controlledBy(&fresh, sbc) {
			// Ours already: an earlier update of this claim's got in,
			// though its answer never came.
			r.setTaken(sbc.UID, &fresh)
			return &fresh, nil
		}
		if fresh.UID != pod.UID || !stillFree(&fresh) {
			r.metrics.takeConflicts.WithLabelValues(takeLost).Inc()
			return nil, nil
		}
		r.metrics.takeConflicts.WithLabelValues(takeRetried).Inc()
		pod = &fresh
	}
}

// takeAttempts bounds the conditional updates adopt makes of one pod: a pod
// whose status keeps changing is passed over for another after that many.
const takeAttempts = 3

func claimOwnerRef(sbc *v1alpha1.SandboxClaim) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: v1alpha1.GroupVersion.String(),
		Kind:       "SandboxClaim",
		Name:       sbc.Name,
		UID:        sbc.UID,
		Controller: ptr.To(true),
	}
}

// startCold creates a pod of the pool for the claim, owned by it from the
// start; the claim is bound when the pod is Ready (its events requeue the
// claim).
func (r *ClaimReconciler) startCold(ctx context.Context, sbc *v1alpha1.SandboxClaim, p *v1alpha1.SandboxPool) (ctrl.Result, error) {
	pod := pool.ColdPod(p)
	pod.OwnerReferences = []metav1.OwnerReference{claimOwnerRef(sbc)}
	if err := r.api.Create(ctx, pod); err != nil {
		if waited := r.pendingFor(sbc); transient(err) && waited < r.opts.ColdTimeout {
			// The webhook rolling out, the API server busy: the claim waits
			// and tries again, up to the cold timeout.
			// The message stays the same from one try to the next (the
			// error's text names ephemeral ports), so that the status is
			// written once, not every coldCreateRetry; the log has the error.
			r.opts.Logger.Info("creating a cold pod failed for now; retrying", "namespace", sbc.Namespace, "claim", sbc.Name, "waited", waited, "err", err)
			return r.setWaiting(ctx, sbc, v1alpha1.ReasonWaitingForPod,
				fmt.Sprintf("creating a cold pod failed for now (%s); retrying until the cold timeout (%s) has passed", failureKind(err), r.opts.ColdTimeout), coldCreateRetry)
		}
		return r.fail(ctx, sbc, v1alpha1.OriginCold, v1alpha1.ReasonColdStartFailed, "creating a cold pod: "+err.Error())
	}
	r.setTaken(sbc.UID, pod)
	r.opts.Logger.Info("no warm pod free: created a cold pod", "namespace", sbc.Namespace, "claim", sbc.Name, "pool", p.Name, "pod", pod.Name)
	return r.setPending(ctx, sbc, pod, fmt.Sprintf("no warm pod of pool %s was free: pod %s was created for the claim and is starting", p.Name, pod.Name))
}

// coldCreateRetry is how soon a cold pod whose creation failed for now is
// tried again.
const coldCreateRetry = 2 * time.Second

// transient reports whether a failed API call may well work when tried
// again: the server (or a webhook it calls, failing closed) is unavailable,
// overloaded or slow, or the request never got an answer. A refusal (the
// pod is invalid, forbidden, over quota) is not.
func transient(err error) bool {
	if apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) {
		return true
	}
	var status apierrors.APIStatus
	return !errors.As(err, &status)
}

// failureKind names a transient failure in a few stable words: the API
// status reason, or that no answer came.
func failureKind(err error) string {
	if reason := apierrors.ReasonForError(err); reason != metav1.StatusReasonUnknown {
		return "the API server answered " + string(reason)
	}
	return "no answer from the API server"
}

// pendingFor is how long the controller has been binding sbc: since it
// first saw the claim, else since its creation.
func (r *ClaimReconciler) pendingFor(sbc *v1alpha1.SandboxClaim) time.Duration {
	r.mu.Lock()
	b, ok := r.bindings[sbc.UID]
	r.mu.Unlock()
	if !ok {
		return time.Since(sbc.CreationTimestamp.Time)
	}
	return time.Since(b.seen)
}

// finishBinding binds the claim to pod, which it controls: once the pod is
// Ready, its runner takes the claim, then the status says Bound.
// digest is the claimant token's digest when the caller already has it, ""
// to work it out here.
func (r *ClaimReconciler) finishBinding(ctx context.Context, sbc *v1alpha1.SandboxClaim, pod *corev1.Pod, digest string) (ctrl.Result, error) {
	origin := pool.Origin(pod)
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		return r.fail(ctx, sbc, origin, v1alpha1.ReasonPodLost, fmt.Sprintf("pod %s ended before the claim was bound (phase %s)", pod.Name, pod.Status.Phase))
	}
	if !pool.IsReady(pod) || pod.Status.PodIP == "" {
		if origin != v1alpha1.OriginCold {
			// A warm pod this claim took that is no longer Ready: let it go
			// and take another.
			return r.dropPod(ctx, sbc, pod, "its warm pod stopped being Ready")
		}
		waited := time.Since(pod.CreationTimestamp.Time)
		if waited > r.opts.ColdTimeout {
			_ = r.deletePod(ctx, pod)
			return r.fail(ctx, sbc, origin, v1alpha1.ReasonColdStartFailed,
				fmt.Sprintf("cold pod %s was not Ready after %s (%s)", pod.Name, r.opts.ColdTimeout, podSummary(pod)))
		}
		return r.setPending(ctx, sbc, pod, fmt.Sprintf("waiting for cold pod %s to be Ready (%s)", pod.Name, podSummary(pod)))
	}
	if digest == "" {
		d, reason, msg := r.tokenDigest(ctx, sbc)
		if reason != "" {
			_ = r.deletePod(ctx, pod)
			return r.fail(ctx, sbc, origin, reason, msg)
		}
		digest = d
	}
	port, err := runnerPort(pod)
	if err != nil {
		return r.dropPod(ctx, sbc, pod, err.Error())
	}
	start := time.Now()
	err = r.handRunner(ctx, sbc, pod, port, digest)
	r.observeStep(sbc.UID, stepRunner, time.Since(start))
	if err != nil {
		r.opts.Logger.Info("runner did not take the claim", "namespace", sbc.Namespace, "claim", sbc.Name, "pod", pod.Name, "err", err)
		if perr := (*protocolError)(nil); errors.As(err, &perr) && perr.outdated {
			return r.dropOutdated(ctx, sbc, pod, perr)
		}
		return r.dropPod(ctx, sbc, pod, err.Error())
	}
	return r.markBound(ctx, sbc, pod, port)
}

// dropPod deletes a pod the claim took but cannot use and tries again,
// up to Options.RunnerAttempts pods.
func (r *ClaimReconciler) dropPod(ctx context.Context, sbc *v1alpha1.SandboxClaim, pod *corev1.Pod, why string) (ctrl.Result, error) {
	if err := r.deletePod(ctx, pod); err != nil {
		return ctrl.Result{}, err
	}
	// Its reservation ends when the cache shows the deletion.
	r.setTaken(sbc.UID, nil)
	r.mu.Lock()
	r.attempts[sbc.UID]++
	n := r.attempts[sbc.UID]
	r.mu.Unlock()
	if n >= r.opts.RunnerAttempts {
		return r.fail(ctx, sbc, pool.Origin(pod), v1alpha1.ReasonRunnerRefused,
			fmt.Sprintf("%d pods could not be handed to the claim; the last, %s: %s", n, pod.Name, why))
	}
	// The deleted pod leaves the cache before the next try sees it.
	return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
}

func (r *ClaimReconciler) deletePod(ctx context.Context, pod *corev1.Pod) error {
	err := r.api.Delete(ctx, pod, client.Preconditions{UID: &pod.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// tokenDigest is the hex SHA-256 of the claimant's token: spec.auth's
// tokenSHA256, or the digest of the Secret it names (read uncached, once
// per binding; the controller never keeps the token).
func (r *ClaimReconciler) tokenDigest(ctx context.Context, sbc *v1alpha1.SandboxClaim) (digest, reason, msg string) {
	if d := sbc.Spec.Auth.TokenSHA256; d != "" {
		return d, "", ""
	}
	ref := sbc.Spec.Auth.SecretRef
	if ref == nil {
		return "", v1alpha1.ReasonSecretInvalid, "spec.auth names neither tokenSHA256 nor secretRef"
	}
	var s corev1.Secret
	if err := r.api.Get(ctx, types.NamespacedName{Namespace: sbc.Namespace, Name: ref.Name}, &s); err != nil {
		return "", v1alpha1.ReasonSecretInvalid, fmt.Sprintf("reading Secret %s named by spec.auth.secretRef: %v", ref.Name, err)
	}
	tok := strings.TrimSpace(string(s.Data[v1alpha1.TokenSecretKey]))
	if len(tok) < 16 {
		return "", v1alpha1.ReasonSecretInvalid, fmt.Sprintf("Secret %s holds no token of at least 16 bytes under the key %q", ref.Name, v1alpha1.TokenSecretKey)
	}
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:]), "", ""
}

// markBound writes the Bound status.
func (r *ClaimReconciler) markBound(ctx context.Context, sbc *v1alpha1.SandboxClaim, pod *corev1.Pod, port int32) (ctrl.Result, error) {
	now := metav1.Now()
	origin := v1alpha1.OriginWarmPod
	if pool.Origin(pod) == v1alpha1.OriginCold {
		origin = v1alpha1.OriginColdPod
	}
	up := sbc.DeepCopy()
	up.Status.Phase = v1alpha1.ClaimBound
	up.Status.PodName, up.Status.NodeName, up.Status.PodIP, up.Status.RunnerPort = pod.Name, pod.Spec.NodeName, pod.Status.PodIP, port
	up.Status.Origin = origin
	up.Status.BoundAt = &now
	up.Status.ExpiresAt = expiry(up)
	up.Status.ObservedGeneration = sbc.Generation
	meta.SetStatusCondition(&up.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionBound, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonBound,
		Message: fmt.Sprintf("bound to %s pod %s on node %s", strings.ToLower(string(origin)), pod.Name, pod.Spec.NodeName),
	})
	start := time.Now()
	err := r.client.Status().Update(ctx, up)
	statusTook := time.Since(start)
	r.observeStep(sbc.UID, stepStatus, statusTook)
	if err != nil {
		if apierrors.IsConflict(err) {
			// A newer claim arrives in the cache and requeues it; the runner
			// answers the repeated claim as before.
			return ctrl.Result{Requeue: true}, nil
		}
		return ctrl.Result{}, fmt.Errorf("writing the Bound status of claim %s/%s: %w", sbc.Namespace, sbc.Name, err)
	}
	r.mu.Lock()
	b := r.bindings[sbc.UID]
	r.dropState(sbc.UID)
	r.justBound[sbc.UID] = justBound{name: types.NamespacedName{Namespace: sbc.Namespace, Name: sbc.Name}, at: time.Now()}
	r.mu.Unlock()
	if b == nil {
		b = &bindTimes{seen: sbc.CreationTimestamp.Time}
	}
	took := time.Since(b.seen)
	r.metrics.claims.WithLabelValues(strings.ToLower(string(origin)), resultBound).Inc()
	r.metrics.bind.WithLabelValues(strings.ToLower(string(origin))).Observe(took.Seconds())
	r.opts.Logger.Info("claim bound", "namespace", sbc.Namespace, "claim", sbc.Name, "pod", pod.Name, "node", pod.Spec.NodeName, "origin", origin,
		"took", took, "take", b.take, "runner", b.runner, "status", statusTook)
	if up.Status.ExpiresAt != nil {
		return ctrl.Result{RequeueAfter: time.Until(up.Status.ExpiresAt.Time)}, nil
	}
	return ctrl.Result{}, nil
}

// setPending says the claim waits, and for what; the pod's events requeue
// it, and a timer checks the cold timeout.
func (r *ClaimReconciler) setPending(ctx context.Context, sbc *v1alpha1.SandboxClaim, pod *corev1.Pod, msg string) (ctrl.Result, error) {
	up := sbc.DeepCopy()
	up.Status.Phase = v1alpha1.ClaimPending
	up.Status.PodName = pod.Name
	up.Status.Origin = v1alpha1.OriginColdPod
	up.Status.ObservedGeneration = sbc.Generation
	meta.SetStatusCondition(&up.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionBound, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonWaitingForPod, Message: msg,
	})
	requeue := ctrl.Result{RequeueAfter: r.opts.ColdTimeout/10 + time.Second}
	if equalStatus(&sbc.Status, &up.Status) {
		return requeue, nil
	}
	if err := r.client.Status().Update(ctx, up); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("writing the Pending status of claim %s/%s: %w", sbc.Namespace, sbc.Name, err)
	}
	return requeue, nil
}

// fail marks the claim Failed with reason and msg.
func (r *ClaimReconciler) fail(ctx context.Context, sbc *v1alpha1.SandboxClaim, origin, reason, msg string) (ctrl.Result, error) {
	up := sbc.DeepCopy()
	up.Status.Phase = v1alpha1.ClaimFailed
	up.Status.ObservedGeneration = sbc.Generation
	meta.SetStatusCondition(&up.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionBound, Status: metav1.ConditionFalse, Reason: reason, Message: msg,
	})
	if err := r.client.Status().Update(ctx, up); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return ctrl.Result{Requeue: true}, nil
		}
		return ctrl.Result{}, fmt.Errorf("writing the Failed status of claim %s/%s: %w", sbc.Namespace, sbc.Name, err)
	}
	if origin == "" {
		origin = "none"
	}
	r.metrics.claims.WithLabelValues(origin, resultFailed).Inc()
	r.opts.Logger.Info("claim failed", "namespace", sbc.Namespace, "claim", sbc.Name, "reason", reason, "message", msg)
	r.mu.Lock()
	r.dropState(sbc.UID)
	r.mu.Unlock()
	return ctrl.Result{RequeueAfter: r.opts.FinishedTTL}, nil
}

func equalStatus(a, b *v1alpha1.SandboxClaimStatus) bool {
	if a.Phase != b.Phase || a.PodName != b.PodName || a.Origin != b.Origin {
		return false
	}
	ca := meta.FindStatusCondition(a.Conditions, v1alpha1.ConditionBound)
	cb := meta.FindStatusCondition(b.Conditions, v1alpha1.ConditionBound)
	return ca != nil && cb != nil && ca.Reason == cb.Reason && ca.Message == cb.Message
}

func podSummary(p *corev1.Pod) string {
	s := "phase " + string(p.Status.Phase)
	if p.Spec.NodeName == "" {
		s += ", not scheduled"
	}
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			s += fmt.Sprintf(", %s waiting: %s", cs.Name, w.Reason)
		}
	}
	return s
}
