package webhook

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sandbox.io/injector/api/v1alpha1"
)

func node(name, label, runtime string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	if label != "" {
		n.Labels[v1alpha1.LabelImageVolume] = label
	}
	n.Status.NodeInfo.ContainerRuntimeVersion = runtime
	return n
}

func boundTo(name string) *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{name}}},
		}}},
	}}}}
}

func TestChooseMethod(t *testing.T) {
	t.Parallel()
	tracker := func(nodes ...*corev1.Node) *NodeTracker {
		tr := NewNodeTracker()
		for _, n := range nodes {
			tr.Update(n)
		}
		return tr
	}
	mixed := tracker(node("new", "true", "containerd://2.4.2"), node("old", "false", "containerd://1.6.9"), node("quiet", "", ""))
	allNew := tracker(node("a", "true", "containerd://2.4.2"), node("b", "true", "containerd://2.4.2"))
	unbound := &corev1.Pod{}
	tests := []struct {
		name    string
		method  string
		pod     *corev1.Pod
		nodes   NodeLookup
		want    string
		wantErr string
	}{
		{"copy is copy", v1alpha1.MethodCopy, boundTo("new"), mixed, v1alpha1.MethodCopy, ""},
		{"auto, bound by nodeName to a supporting node", v1alpha1.MethodAuto, &corev1.Pod{Spec: corev1.PodSpec{NodeName: "new"}}, mixed, v1alpha1.MethodImageVolume, ""},
		{"auto, bound by matchFields to a supporting node", v1alpha1.MethodAuto, boundTo("new"), mixed, v1alpha1.MethodImageVolume, ""},
		{"auto, bound to an unsupporting node", v1alpha1.MethodAuto, boundTo("old"), mixed, v1alpha1.MethodCopy, ""},
		{"auto, bound to an unlabelled node", v1alpha1.MethodAuto, boundTo("quiet"), mixed, v1alpha1.MethodCopy, ""},
		{"auto, bound to an unknown node", v1alpha1.MethodAuto, boundTo("ghost"), mixed, v1alpha1.MethodCopy, ""},
		{"auto, unbound, mixed cluster", v1alpha1.MethodAuto, unbound, mixed, v1alpha1.MethodCopy, ""},
		{"auto, unbound, every node supports", v1alpha1.MethodAuto, unbound, allNew, v1alpha1.MethodImageVolume, ""},
		{"auto, no nodes known", v1alpha1.MethodAuto, unbound, tracker(), v1alpha1.MethodCopy, ""},
		{"auto, no node lookup", v1alpha1.MethodAuto, unbound, nil, v1alpha1.MethodCopy, ""},
		{"forced, unbound", v1alpha1.MethodImageVolume, unbound, mixed, v1alpha1.MethodImageVolume, ""},
		{"forced, bound to a supporting node", v1alpha1.MethodImageVolume, boundTo("new"), mixed, v1alpha1.MethodImageVolume, ""},
		{"forced, bound to an unsupporting node", v1alpha1.MethodImageVolume, boundTo("old"), mixed, "",
			"node old does not support image volumes (container runtime containerd://1.6.9)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.Method = tc.method
			got, err := ChooseMethod(cfg, tc.pod, tc.nodes)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want a refusal containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ChooseMethod = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestNodeTrackerCounts(t *testing.T) {
	t.Parallel()
	tr := NewNodeTracker()
	tr.Update(node("a", "true", ""))
	tr.Update(node("b", "false", ""))
	if s, n := tr.Counts(); s != 1 || n != 2 {
		t.Fatalf("counts %d/%d, want 1/2", s, n)
	}
	tr.Update(node("b", "true", "")) // relabelled
	tr.Update(node("a", "true", "")) // resync: no double count
	if s, n := tr.Counts(); s != 2 || n != 2 {
		t.Fatalf("after relabel: %d/%d, want 2/2", s, n)
	}
	tr.Delete("a")
	tr.Delete("missing")
	if s, n := tr.Counts(); s != 1 || n != 1 {
		t.Fatalf("after delete: %d/%d, want 1/1", s, n)
	}
}
