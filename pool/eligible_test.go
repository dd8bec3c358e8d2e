package pool

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeEligibilityChanged(t *testing.T) {
	base := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"zone": "a"}}}
	for name, tc := range map[string]struct {
		mutate func(*corev1.Node)
		want   bool
	}{
		"heartbeat only": {func(n *corev1.Node) { n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady}} }, false},
		"label":          {func(n *corev1.Node) { n.Labels["zone"] = "b" }, true},
		"taint":          {func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}} }, true},
		"cordoned":       {func(n *corev1.Node) { n.Spec.Unschedulable = true }, true},
	} {
		updated := base.DeepCopy()
		tc.mutate(updated)
		if got := NodeEligibilityChanged(base, updated); got != tc.want {
			t.Errorf("%s: changed %v, want %v", name, got, tc.want)
		}
	}
}
