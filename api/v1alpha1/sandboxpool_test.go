package v1alpha1_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/testenv"
)

// TestSandboxPoolCRD installs the generated CRD in a real API server and
// checks its contract: defaults, validation, and per-node status entries
// that agents write with server-side apply without overwriting each other.
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

	// Two agents apply their own node's entry; both entries stay.
	for _, node := range []string{"node-a", "node-b"} {
		patch := &v1alpha1.SandboxPool{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "SandboxPool"},
			ObjectMeta: metav1.ObjectMeta{Name: "python", Namespace: "default"},
			Status: v1alpha1.SandboxPoolStatus{Nodes: []v1alpha1.NodePoolStatus{
				{Node: node, Desired: 1, Warm: 1, Ready: 1},
			}},
		}
		err := c.Status().Patch(ctx, patch, client.Apply, client.FieldOwner("sandbox-agent/"+node), client.ForceOwnership)
		if err != nil {
			t.Fatalf("applying %s's status: %v", node, err)
		}
	}
	var got v1alpha1.SandboxPool
	if err := c.Get(ctx, client.ObjectKeyFromObject(pool), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Nodes) != 2 {
		t.Errorf("status nodes %+v, want both agents' entries", got.Status.Nodes)
	}
}
