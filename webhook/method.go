package webhook

import (
	"sync"

	corev1 "k8s.io/api/core/v1"

	"sandbox.io/injector/api/v1alpha1"
)

// NodeView is what the injection method choice knows of a node.
type NodeView struct {
	// ImageVolume is the node's v1alpha1.LabelImageVolume label: "true",
	// "false", or "" when nothing says.
	ImageVolume string
	// Runtime is status.nodeInfo.containerRuntimeVersion, for messages.
	Runtime string
}

// NodeLookup answers what ChooseMethod asks about nodes.
type NodeLookup interface {
	// Node returns what is known of the named node.
	Node(name string) (NodeView, bool)
	// Counts returns how many nodes are labelled as supporting image
	// volumes, and how many nodes there are.
	Counts() (supported, total int)
}

// ChooseMethod decides how the runner reaches the pod's containers.
//
//   - MethodCopy in the configuration: always copy.
//   - MethodImageVolume: always an image volume, but a pod already bound to
//     a node labelled as not supporting them is refused, naming the node and
//     its runtime.
//   - MethodAuto: an image volume only when it is certain to work: the pod is
//     bound (spec.nodeName, or a DaemonSet-style matchFields node affinity)
//     to a node labelled as supporting it, or every known node is (and there
//     is at least one). Otherwise copy. It never adds node affinity, so it
//     never narrows where a pod may run.
func ChooseMethod(cfg *Config, pod *corev1.Pod, nodes NodeLookup) (string, error) {
	switch cfg.Method {
	case v1alpha1.MethodCopy:
		return v1alpha1.MethodCopy, nil
	case v1alpha1.MethodImageVolume:
		if name := boundNode(pod); name != "" && nodes != nil {
			if n, ok := nodes.Node(name); ok && n.ImageVolume == "false" {
				return "", refuse("spec.nodeName", "node %s does not support image volumes (container runtime %s), "+
					"and sandbox-injector is configured to inject only through image volumes", name, n.Runtime)
			}
		}
		return v1alpha1.MethodImageVolume, nil
	}
	if nodes == nil {
		return v1alpha1.MethodCopy, nil
	}
	if name := boundNode(pod); name != "" {
		if n, ok := nodes.Node(name); ok && n.ImageVolume == "true" {
			return v1alpha1.MethodImageVolume, nil
		}
		return v1alpha1.MethodCopy, nil
	}
	if supported, total := nodes.Counts(); total > 0 && supported == total {
		return v1alpha1.MethodImageVolume, nil
	}
	return v1alpha1.MethodCopy, nil
}

// boundNode returns the node a pod can only run on: spec.nodeName, or the
// single node of a required matchFields metadata.name term (how DaemonSets
// and the warm-pool agent pin pods), else "".
func boundNode(pod *corev1.Pod) string {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 {
		return ""
	}
	for _, f := range terms[0].MatchFields {
		if f.Key == "metadata.name" && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
			return f.Values[0]
		}
	}
	return ""
}

// NodeTracker keeps NodeViews from node events, so that a choice costs a map
// lookup instead of a list of every node. It is safe for concurrent use.
type NodeTracker struct {
	mu        sync.RWMutex
	nodes     map[string]NodeView
	supported int
}

var _ NodeLookup = (*NodeTracker)(nil)

// NewNodeTracker returns an empty tracker.
func NewNodeTracker() *NodeTracker { return &NodeTracker{nodes: map[string]NodeView{}} }

// Update records a node as it is now.
func (t *NodeTracker) Update(n *corev1.Node) {
	v := NodeView{ImageVolume: n.Labels[v1alpha1.LabelImageVolume], Runtime: n.Status.NodeInfo.ContainerRuntimeVersion}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.nodes[n.Name]; ok && old.ImageVolume == "true" {
		t.supported--
	}
	if v.ImageVolume == "true" {
		t.supported++
	}
	t.nodes[n.Name] = v
}

// Delete forgets a node.
func (t *NodeTracker) Delete(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.nodes[name]; ok {
		if old.ImageVolume == "true" {
			t.supported--
		}
		delete(t.nodes, name)
	}
}

// Node implements NodeLookup.
func (t *NodeTracker) Node(name string) (NodeView, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	v, ok := t.nodes[name]
	return v, ok
}

// Counts implements NodeLookup.
func (t *NodeTracker) Counts() (int, int) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.supported, len(t.nodes)
}
