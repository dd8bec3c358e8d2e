package controller

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"sandbox.io/injector/api/v1alpha1"
)

// TestForgetClaimDropsPendingState: a claim deleted while Pending leaves
// only its name to Reconcile; what memory held of it under its UID (failed
// runners, the pod it took, the need for a current runner) goes too, and
// another claim's state stays.
func TestForgetClaimDropsPendingState(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	r := newClaimReconciler(Options{}, nil, nil, m)
	gone := types.NamespacedName{Namespace: "team", Name: "gone"}
	kept := types.NamespacedName{Namespace: "team", Name: "kept"}
	for uid, name := range map[types.UID]types.NamespacedName{"u-gone": gone, "u-kept": kept} {
		r.names[uid] = name
		r.attempts[uid] = 1
		r.taken[uid] = types.NamespacedName{Namespace: "team", Name: "pod-" + name.Name}
		r.needCurrent[uid] = "older runner"
		r.bindings[uid] = &bindTimes{seen: time.Now()}
		r.justBound[uid+"-bound"] = justBound{name: name, at: time.Now()}
	}
	r.forgetClaim(gone)
	for what, n := range map[string]int{"names": len(r.names), "attempts": len(r.attempts), "taken": len(r.taken), "needCurrent": len(r.needCurrent),
		"bindings": len(r.bindings), "justBound": len(r.justBound)} {
		if n != 1 {
			t.Errorf("%s holds %d claims after forgetting %s, want 1 (%s's)", what, n, gone, kept)
		}
	}
	if _, ok := r.names["u-kept"]; !ok {
		t.Errorf("the state of %s went with %s", kept, gone)
	}
}

// TestStaleCopyOfAJustBoundClaim: a reconcile that reads a Pending copy of a
// claim the controller has just bound waits for the cache (no second
// POST /claim, no conflicting status write); the Bound copy, or a copy
// still Pending after justBoundWait, ends the wait.
func TestStaleCopyOfAJustBoundClaim(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	r := newClaimReconciler(Options{}, nil, nil, m)
	claimOf := func(uid types.UID, phase v1alpha1.ClaimPhase) *v1alpha1.SandboxClaim {
		return &v1alpha1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{UID: uid, Namespace: "team", Name: string(uid)}, Status: v1alpha1.SandboxClaimStatus{Phase: phase}}
	}
	if r.waitForBoundCopy(claimOf("never-bound", v1alpha1.ClaimPending)) {
		t.Error("a claim this controller never bound waits for its cache")
	}
	r.justBound["fresh"] = justBound{name: types.NamespacedName{Namespace: "team", Name: "fresh"}, at: time.Now()}
	if !r.waitForBoundCopy(claimOf("fresh", v1alpha1.ClaimPending)) || !r.waitForBoundCopy(claimOf("fresh", "")) {
		t.Error("a stale Pending copy of a claim bound just now is bound again")
	}
	if r.waitForBoundCopy(claimOf("fresh", v1alpha1.ClaimBound)) {
		t.Error("the Bound copy waits")
	}
	if _, ok := r.justBound["fresh"]; ok {
		t.Error("the claim is still remembered after its Bound copy arrived")
	}
	r.justBound["lagging"] = justBound{name: types.NamespacedName{Namespace: "team", Name: "lagging"}, at: time.Now().Add(-justBoundWait - time.Second)}
	if r.waitForBoundCopy(claimOf("lagging", v1alpha1.ClaimPending)) {
		t.Errorf("a copy still Pending %s after the Bound write keeps waiting", justBoundWait)
	}
}
