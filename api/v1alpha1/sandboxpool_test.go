package v1alpha1_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/testenv"
)

// TestSandboxPoolCRD installs the generated CRD in a real API server and
// checks its contract: defaults, validation, and a status subresource of
// totals only.
func TestSandboxPoolCRD(t *testing.T) {
	_, c := testenv.StartWithCRDs(t)
	ctx := t.Context()

	pool := &v1alpha1.SandboxPool{
		ObjectMeta: metav1.ObjectMeta{Name: "python", Namespace: "default"},
		Spec:       v1alpha1.SandboxPoolSpec{Template: v1alpha1.SandboxTemplate{Image: "images.test/python:3"}},
	}
	if err := c.Create(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if pool.Spec.PodsPerNode == nil || *pool.Spec.PodsPerNode != 1 {
		t.Errorf("podsPerNode defaulted to %v, want 1", pool.Spec.PodsPerNode)
	}

	for _, tc := range []struct {
		name string
		spec v1alpha1.SandboxPoolSpec
		want string
	}{
		{"empty image", v1alpha1.SandboxPoolSpec{}, "spec.template.image"},
		{"negative size", v1alpha1.SandboxPoolSpec{Template: v1alpha1.SandboxTemplate{Image: "x"}, PodsPerNode: ptr.To[int32](-1)}, "spec.podsPerNode"},
		{"huge size", v1alpha1.SandboxPoolSpec{Template: v1alpha1.SandboxTemplate{Image: "x"}, PodsPerNode: ptr.To[int32](1000)}, "spec.podsPerNode"},
	} {
		bad := &v1alpha1.SandboxPool{ObjectMeta: metav1.ObjectMeta{GenerateName: "bad-", Namespace: "default"}, Spec: tc.spec}
		if err := c.Create(ctx, bad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want a refusal naming %s", tc.name, err, tc.want)
		}
	}

	// The status is a subresource holding only the totals (the claim
	// controller writes them): an update of the pool leaves it alone, and
	// a per-node list written to it is pruned.
	st := pool.DeepCopy()
	st.Status = v1alpha1.SandboxPoolStatus{Desired: 2, Ready: 1, Warm: 2, Claimed: 1, ObservedGeneration: st.Generation,
		Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: "Filling", Message: "1 of 2 warm pods Ready", LastTransitionTime: metav1.Now()}}}
	if err := c.Status().Update(ctx, st); err != nil {
		t.Fatalf("writing the totals: %v", err)
	}
	spec := st.DeepCopy()
	spec.Status = v1alpha1.SandboxPoolStatus{}
	spec.Spec.PodsPerNode = ptr.To[int32](2)
	if err := c.Update(ctx, spec); err != nil {
		t.Fatal(err)
	}
	raw := &unstructured.Unstructured{}
	raw.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("SandboxPool"))
	if err := c.Get(ctx, client.ObjectKeyFromObject(pool), raw); err != nil {
		t.Fatal(err)
	}
	raw.Object["status"].(map[string]any)["nodes"] = []any{map[string]any{"node": "node-a", "desired": int64(1)}}
	if err := c.Status().Update(ctx, raw); err != nil {
		t.Fatalf("writing a status with nodes: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(pool), raw); err != nil {
		t.Fatal(err)
	}
	status, _ := raw.Object["status"].(map[string]any)
	if _, ok := status["nodes"]; ok {
		t.Errorf("status.nodes kept: %v", status)
	}
	if status["desired"] != int64(2) || status["ready"] != int64(1) || status["claimed"] != int64(1) {
		t.Errorf("status %v, want the totals written before the spec update", status)
	}
}
