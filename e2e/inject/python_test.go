package inject

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"sandbox.io/injector/api/v1alpha1"
)

// TestPythonClient runs the Python client's end-to-end suite
// (clients/python/tests/e2e, pytest) against the cluster: claims of a
// busybox pool (the sandbox has no Python; the client does) through the pod
// proxy and directly, run, stream, files both ways, release, extend and
// expiry, and the typed errors of a missing pool and of a pool with no warm
// pod when cold starts are refused. make e2e prepares the venv
// (make python-env); run it alone with
//
//	make e2e E2E_RUN='^TestPythonClient$'
func TestPythonClient(t *testing.T) {
	x := requireE2E(t)
	python := filepath.Join(x.root, "_out", "python-venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("the Python client's venv is missing (%v): run make python-env", err)
	}
	t.Cleanup(func() {
		if err := x.install(); err != nil {
			t.Errorf("going back to the chart without the agent: %v", err)
		}
		x.labelNodes(context.Background(), t, "")
	})
	x.installPoolAgent(t)
	x.agentPodReady(t, "")
	x.labelNodes(t.Context(), t, "true")
	ns := x.namespace(t, "python", nil)
	p := x.createPool(t, ns, "busybox", 2)
	empty := x.createPool(t, ns, "empty", 0)
	x.waitWarmReady(t, p, 2, v1alpha1.MethodImageVolume)

	cmd := exec.CommandContext(t.Context(), python, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-m", "e2e",
		filepath.Join("clients", "python", "tests", "e2e"))
	cmd.Dir = x.root
	cmd.Env = append(os.Environ(),
		"SANDBOX_PY_E2E_NAMESPACE="+ns,
		"SANDBOX_PY_E2E_POOL="+p.Name,
		"SANDBOX_PY_E2E_EMPTY_POOL="+empty.Name,
	)
	out, err := cmd.CombinedOutput()
	t.Logf("pytest:\n%s", out)
	if err != nil {
		t.Fatalf("the Python client's e2e suite failed: %v", err)
	}
}
