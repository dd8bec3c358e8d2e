package inject

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/testenv"
	runnerapi "sandbox.io/injector/runner/api"
)

// labelNodes sets (or, with "", removes) the image-volume label on every
// node, as the node agent will, and waits until the webhook's node cache has
// seen it: a dry-run pod comes back with the expected method.
func (x *env) labelNodes(ctx context.Context, t *testing.T, value string) {
	t.Helper()
	nodes, err := x.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var v any = value
	if value == "" {
		v = nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{v1alpha1.LabelImageVolume: v}}})
	for _, n := range nodes.Items {
		if _, err := x.kube.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("labelling node %s: %v", n.Name, err)
		}
	}
	want := v1alpha1.MethodCopy
	if value == "true" {
		want = v1alpha1.MethodImageVolume
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pod, err := x.kube.CoreV1().Pods("default").Create(ctx,
			busyboxPod(x, "default", "method-probe", map[string]string{v1alpha1.AnnotationInject: "true"}),
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && methodOf(pod) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook did not switch to method %s after labelling the nodes %q (last: %v)", want, value, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func methodOf(p *corev1.Pod) string {
	var st v1alpha1.InjectionStatus
	_ = json.Unmarshal([]byte(p.Annotations[v1alpha1.AnnotationStatus]), &st)
	return st.Method
}

// agentLabelsNode installs the chart with the node agent for a moment: the
// agent asks containerd (v2) its version over the CRI and labels the node as
// supporting image volumes, with an Event. The chart then goes back to its
// usual values (no agent), so the other tests decide the label themselves.
func (x *env) agentLabelsNode(t *testing.T) {
	t.Helper()
	x.labelNodes(t.Context(), t, "")
	x.installAgent(t)
	nodes, err := x.kube.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		var last string
		err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			got, err := x.kube.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			last = got.Labels[v1alpha1.LabelImageVolume]
			return last == "true", nil
		})
		if err != nil {
			t.Fatalf("the agent did not label node %s %s=true (label %q)", n.Name, v1alpha1.LabelImageVolume, last)
		}
		// The agent's recorder writes the Event asynchronously.
		testenv.Eventually(t, 30*time.Second, "an ImageVolumeSupport event on node "+n.Name, func() error {
			events, err := x.kube.CoreV1().Events(metav1.NamespaceDefault).List(t.Context(), metav1.ListOptions{
				FieldSelector: "involvedObject.name=" + n.Name + ",reason=ImageVolumeSupport"})
			if err != nil {
				return err
			}
			if len(events.Items) == 0 {
				return errors.New("none yet")
			}
			t.Logf("node %s: %s", n.Name, events.Items[len(events.Items)-1].Message)
			return nil
		})
	}
	if err := x.install(); err != nil {
		t.Fatalf("going back to the chart without the agent: %v", err)
	}
}

func TestImageVolumeInjection(t *testing.T) {
	x := requireE2E(t)
	t.Cleanup(func() { x.labelNodes(context.Background(), t, "") })

	// The agent finds that every node supports image volumes: auto mounts
	// the runner image.
	x.agentLabelsNode(t)
	x.labelNodes(t.Context(), t, "true") // waits until the webhook has seen it
	ns := x.namespace(t, "imagevolume", nil)
	created, err := x.kube.CoreV1().Pods(ns).Create(t.Context(),
		busyboxPod(x, ns, "zero-copy", map[string]string{v1alpha1.AnnotationInject: "true"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if methodOf(created) != v1alpha1.MethodImageVolume || len(created.Spec.InitContainers) != 0 {
		t.Fatalf("method %q with %d init containers; want an image volume and none", methodOf(created), len(created.Spec.InitContainers))
	}
	pod := x.waitReady(t, ns, "zero-copy", 2*time.Minute)
	res, err := runnerClient(pod, testToken).Execute(t.Context(), runnerapi.ExecuteRequest{Argv: []string{"echo", "from an image volume"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "from an image volume\n" {
		t.Errorf("execute: %+v", res)
	}

	// A node labelled unsupported: auto falls back to copy.
	x.labelNodes(t.Context(), t, "false")
	created, err = x.kube.CoreV1().Pods(ns).Create(t.Context(),
		busyboxPod(x, ns, "copied", map[string]string{v1alpha1.AnnotationInject: "true"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if methodOf(created) != v1alpha1.MethodCopy || !injected(created) {
		t.Errorf("with the node labelled unsupported: method %q; want copy", methodOf(created))
	}
	x.waitReady(t, ns, "copied", 2*time.Minute)
}
