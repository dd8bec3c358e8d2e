package pool

import (
	"slices"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"sandbox.io/injector/api/v1alpha1"
)

// NodeEligible reports whether node keeps warm pods of pool p, and if not,
// why: the node's labels must match the pool's node selector and its
// required node affinity, and the pool's tolerations must tolerate each of the node's NoSchedule and
// NoExecute taints (PreferNoSchedule taints are only a preference).
func NodeEligible(p *v1alpha1.SandboxPool, node *corev1.Node) (bool, string) {
	if node == nil {
		return false, "node unknown"
	}
	if len(p.Spec.NodeSelector) > 0 &&
		!labels.SelectorFromSet(p.Spec.NodeSelector).Matches(labels.Set(node.Labels)) {
		return false, "node selector does not match"
	}
	if p.Spec.Affinity != nil && p.Spec.Affinity.NodeAffinity != nil {
		ok, err := nodeaffinity.NewRequiredNodeAffinity(nil, p.Spec.Affinity).Match(node)
		if err != nil {
			return false, "node affinity is invalid: " + err.Error()
		}
		if !ok {
			return false, "node affinity does not match"
		}
	}
	for i := range node.Spec.Taints {
		taint := &node.Spec.Taints[i]
		if taint.Effect != corev1.TaintEffectNoSchedule && taint.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !slices.ContainsFunc(p.Spec.Tolerations, func(t corev1.Toleration) bool {
			return t.ToleratesTaint(logr.Discard(), taint, true)
		}) {
			return false, "taint " + taint.ToString() + " is not tolerated"
		}
	}
	return true, ""
}

// NodeEligibilityChanged reports whether a node update can change which
// pools it keeps: its labels (node selectors and affinity), taints
// (tolerations) or schedulability; heartbeats and status do not.
func NodeEligibilityChanged(old, updated *corev1.Node) bool {
	return !equality.Semantic.DeepEqual(old.Labels, updated.Labels) ||
		!equality.Semantic.DeepEqual(old.Spec.Taints, updated.Spec.Taints) ||
		old.Spec.Unschedulable != updated.Spec.Unschedulable
}
