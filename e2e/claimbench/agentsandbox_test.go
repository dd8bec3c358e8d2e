package claimbench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sandbox.io/injector/internal/testenv"
)

func TestClaimReady(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	if ClaimReady(u) {
		t.Fatal("a claim without status is Ready")
	}
	_ = unstructured.SetNestedSlice(u.Object, []any{
		map[string]any{"type": "Ready", "status": "False"},
	}, "status", "conditions")
	if ClaimReady(u) {
		t.Fatal("Ready=False is Ready")
	}
	_ = unstructured.SetNestedSlice(u.Object, []any{
		map[string]any{"type": "Other", "status": "True"},
		map[string]any{"type": "Ready", "status": "True"},
	}, "status", "conditions")
	if !ClaimReady(u) {
		t.Fatal("Ready=True is not Ready")
	}
}

// TestAgentSandboxDriver runs the driver against a real API server with
// agent-sandbox's CRDs (from bin/crds/agent-sandbox, make peers-crds)
// and, in place of its controller, a loop that marks each new claim Ready.
func TestAgentSandboxDriver(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	crds := filepath.Join(root, "bin", "crds", "agent-sandbox")
	if _, err := os.Stat(crds); err != nil {
		testenv.Missing(t, "bin/crds/agent-sandbox (run make peers-crds)")
	}
	cfg := testenv.Start(t, &envtest.Environment{CRDDirectoryPaths: []string{crds}, ErrorIfCRDPathMissing: true})
	a, err := NewAgentSandbox(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := "default"
	pod := corev1.PodSpec{Containers: []corev1.Container{{Name: "sandbox", Image: "busybox"}}}
	if err := a.CreatePool(t.Context(), ns, "p", pod, 2); err != nil {
		t.Fatal(err)
	}
	if err := a.ScalePool(t.Context(), ns, "p", 3); err != nil {
		t.Fatal(err)
	}
	pool, err := a.dyn.Resource(WarmPoolGVR).Namespace(ns).Get(t.Context(), "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(pool.Object, "spec", "replicas"); r != 3 {
		t.Fatalf("replicas %d after ScalePool, want 3", r)
	}
	if n, err := a.ReadyReplicas(t.Context(), ns, "p"); err != nil || n != 0 {
		t.Fatalf("ReadyReplicas = %d, %v; want 0 (no controller)", n, err)
	}

	// The stand-in controller: every claim seen is marked Ready.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		claims := a.dyn.Resource(ClaimGVR).Namespace(ns)
		for ctx.Err() == nil {
			list, err := claims.List(ctx, metav1.ListOptions{})
			if err == nil {
				for i := range list.Items {
					c := &list.Items[i]
					if ClaimReady(c) {
						continue
					}
					_ = unstructured.SetNestedSlice(c.Object, []any{map[string]any{
						"type": "Ready", "status": "True", "reason": "Test", "message": "",
						"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
					}}, "status", "conditions")
					_, _ = claims.UpdateStatus(ctx, c, metav1.UpdateOptions{})
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	name, d, err := a.Claim(t.Context(), ns, "p", 30*time.Second)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	if d <= 0 || name == "" {
		t.Fatalf("Claim = %q, %s", name, d)
	}
	if err := a.Release(t.Context(), ns, name); err != nil {
		t.Fatal(err)
	}
	cancel()
	// No controller marks this one: the claim times out with a clear error.
	if _, _, err := a.Claim(t.Context(), ns, "p", time.Second); err == nil {
		t.Fatal("a claim nobody marks Ready returned no error")
	}
}
