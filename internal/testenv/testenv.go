// Package testenv starts the real kube-apiserver and etcd that integration
// tests run against (controller-runtime's envtest, with the binaries that
// `make tools-envtest` builds into bin/), and finds the repository's files.
//
// When the binaries are missing a test fails under CI (CI is set) and is
// skipped with a loud message otherwise, so that `go test ./...` on a
// machine without them still runs everything else.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sandbox.io/injector/internal/kubescheme"
)

// RepoRoot returns the repository root: the nearest directory upwards from
// the working directory that holds go.mod of module sandbox.io/injector.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the working directory: %w", err)
	}
	for {
		raw, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && len(raw) > 0 && containsModule(raw) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of module sandbox.io/injector above the working directory")
		}
		dir = parent
	}
}

func containsModule(goMod []byte) bool {
	const line = "module sandbox.io/injector\n"
	return len(goMod) >= len(line) && string(goMod[:len(line)]) == line
}

// Assets returns the directory with kube-apiserver and etcd: the
// KUBEBUILDER_ASSETS environment variable, else bin/ of the repository. It
// fails the test under CI and skips it otherwise when they are missing.
func Assets(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "bin")
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			Missing(t, fmt.Sprintf("%s is not in %s (run make tools-envtest)", name, dir))
		}
	}
	return dir
}

// Missing fails the test under CI and skips it loudly otherwise.
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("required for this test under CI: %s", what)
	}
	fmt.Fprintf(os.Stderr, "\n*** SKIPPING %s: %s ***\n\n", t.Name(), what)
	t.Skip(what)
}

// Start starts env (filling in the binaries' directory and generous
// timeouts for a small shared machine) and stops it when the test ends.
func Start(t testing.TB, env *envtest.Environment) *rest.Config {
	t.Helper()
	env.BinaryAssetsDirectory = Assets(t)
	if env.ControlPlaneStartTimeout == 0 {
		env.ControlPlaneStartTimeout = 3 * time.Minute
	}
	if env.ControlPlaneStopTimeout == 0 {
		env.ControlPlaneStopTimeout = time.Minute
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver and etcd from %s: %v", env.BinaryAssetsDirectory, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping kube-apiserver and etcd: %v", err)
		}
	})
	return cfg
}

// StartWithCRDs starts a kube-apiserver and etcd with the chart's CRDs
// (SandboxPool) installed, and returns its config and a client whose scheme
// knows the built-in types and sandbox.io/v1alpha1.
func StartWithCRDs(t testing.TB) (*rest.Config, client.Client) {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Start(t, &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "charts", "sandbox-injector", "crds")},
		ErrorIfCRDPathMissing: true,
	})
	scheme, err := kubescheme.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("creating a client of the test API server: %v", err)
	}
	return cfg, c
}

// Eventually calls check every 100ms until it returns nil, and fails the
// test with the last error once timeout has passed or the test's context
// ends.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %s for %s: %v", timeout, what, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v (last: %v)", what, t.Context().Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
