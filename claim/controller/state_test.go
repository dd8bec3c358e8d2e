package controller

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
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
	r := &ClaimReconciler{metrics: m, reserved: map[types.UID]types.NamespacedName{}, attempts: map[types.UID]int{},
		taken: map[types.UID]types.NamespacedName{}, needCurrent: map[types.UID]string{}, names: map[types.UID]types.NamespacedName{}}
	gone := types.NamespacedName{Namespace: "team", Name: "gone"}
	kept := types.NamespacedName{Namespace: "team", Name: "kept"}
	for uid, name := range map[types.UID]types.NamespacedName{"u-gone": gone, "u-kept": kept} {
		r.names[uid] = name
		r.attempts[uid] = 1
		r.taken[uid] = types.NamespacedName{Namespace: "team", Name: "pod-" + name.Name}
		r.needCurrent[uid] = "older runner"
	}
	r.forgetClaim(gone)
	for what, n := range map[string]int{"names": len(r.names), "attempts": len(r.attempts), "taken": len(r.taken), "needCurrent": len(r.needCurrent)} {
		if n != 1 {
			t.Errorf("%s holds %d claims after forgetting %s, want 1 (%s's)", what, n, gone, kept)
		}
	}
	if _, ok := r.names["u-kept"]; !ok {
		t.Errorf("the state of %s went with %s", kept, gone)
	}
}
