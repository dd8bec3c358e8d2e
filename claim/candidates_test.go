package claim_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/webhook"
)

func TestRunnerPortNameIsTheWebhooks(t *testing.T) {
	t.Parallel()
	if claim.RunnerPortName != webhook.PortName || claim.DefaultTokenSecret != webhook.DefaultTokenSecret {
		t.Errorf("claim reaches port %q and Secret %q, the webhook injects %q and %q",
			claim.RunnerPortName, claim.DefaultTokenSecret, webhook.PortName, webhook.DefaultTokenSecret)
	}
}

// TestCandidates: only claimable pods are candidates, the node with the most
// of them comes first, and the order within a node varies between calls so
// that racing claimers spread out.
func TestCandidates(t *testing.T) {
	t.Parallel()
	p := &v1alpha1.SandboxPool{ObjectMeta: metav1.ObjectMeta{Name: "py", Namespace: "ns"}}
	ready := func(name, node string) corev1.Pod {
		pod := pool.WarmPod(p, node)
		pod.Name = name
		pod.Status.Phase = corev1.PodRunning
		pod.Status.PodIP = "10.0.0.1"
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		return *pod
	}
	var pods []corev1.Pod
	for i := range 5 {
		pods = append(pods, ready(fmt.Sprintf("b%d", i), "node-b"))
	}
	pods = append(pods, ready("a0", "node-a"), ready("a1", "node-a"))
	for i := range 3 {
		pods = append(pods, ready(fmt.Sprintf("c%d", i), "node-c"))
	}
	notReady := ready("a-not-ready", "node-a")
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	stale := ready("a-stale", "node-a")
	stale.Labels[v1alpha1.LabelTemplateHash] = "old"
	claimed := ready("a-claimed", "node-a")
	claimed.Labels[v1alpha1.LabelState] = v1alpha1.StateClaimed
	deleting := ready("a-deleting", "node-a")
	deleting.DeletionTimestamp = &metav1.Time{}
	pods = append(pods, notReady, stale, claimed, deleting)

	firsts := map[string]bool{}
	for range 50 {
		got := claim.Candidates(p, pods)
		if len(got) != 10 {
			t.Fatalf("%d candidates, want the 10 claimable pods", len(got))
		}
		var nodes []string
		for _, pod := range got {
			if n := pod.Spec.NodeName; len(nodes) == 0 || nodes[len(nodes)-1] != n {
				nodes = append(nodes, n)
			}
		}
		if fmt.Sprint(nodes) != "[node-b node-c node-a]" {
			t.Fatalf("node order %v, want the node with the most claimable pods first", nodes)
		}
		firsts[got[0].Name] = true
	}
	if len(firsts) < 2 {
		t.Errorf("the first candidate was always %v: claimers would all race for one pod", firsts)
	}
}
