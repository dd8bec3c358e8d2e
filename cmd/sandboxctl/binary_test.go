package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sandbox.io/injector/internal/testenv"
)

// buildSandboxctl builds the binary into a directory of its own with the
// kubectl-sandbox and kubectl_complete-sandbox links the Makefile makes, and
// returns the directory.
func buildSandboxctl(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "sandboxctl"), "./cmd/sandboxctl")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building sandboxctl: %v\n%s", err, out)
	}
	for _, link := range []string{"kubectl-sandbox", "kubectl_complete-sandbox"} {
		if err := os.Symlink("sandboxctl", filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runBinary runs a program with the harness's kubeconfig and token store in
// its environment and dir first on PATH.
func (h *harness) runBinary(dir, program string, args ...string) result {
	h.t.Helper()
	cmd := exec.CommandContext(h.t.Context(), program, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+h.kubeconfig, "SANDBOXCTL_TOKEN_DIR="+h.tokens,
		"PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			h.t.Fatalf("running %s %q: %v", program, args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// testBinary runs the built sandboxctl: its exit codes, -v request logs
// without the claimant token, and the kubectl plugin through the real
// kubectl.
func (h *harness) testBinary(t *testing.T) {
	dir := buildSandboxctl(t)
	bin := filepath.Join(dir, "sandboxctl")
	ns := h.e.Namespace()
	h.pool(ns, "bin", 2)
	h.pool(ns, "none", 0)
	name := h.claimText(ns, "bin")
	token := strings.TrimSpace(h.must(ns, "token", name).stdout)
	base := []string{"-n", ns, "--via", "direct"}

	t.Run("ExitCodes", func(t *testing.T) {
		if res := h.runBinary(dir, bin, append(base, "exec", name, "--", "sh", "-c", "exit 5")...); res.code != 5 {
			t.Errorf("exec exit 5: %s", res)
		}
		if res := h.runBinary(dir, bin, append(base, "claim", "none", "--no-cold")...); res.code != exitNoSandbox || !strings.Contains(res.stderr, "sandboxctl: ") {
			t.Errorf("claim --no-cold of an empty pool: %s; want exit %d", res, exitNoSandbox)
		}
	})

	t.Run("VerbosityMasksTheToken", func(t *testing.T) {
		// -v=9, direct: API server and runner requests are logged, with
		// curl commands; the token (in Authorization) is not.
		res := h.runBinary(dir, bin, append(base, "-v=9", "exec", name, "--", "true")...)
		if res.code != 0 || !strings.Contains(res.stderr, "/apis/sandbox.io/v1alpha1/namespaces/"+ns+"/sandboxclaims/"+name) ||
			!strings.Contains(res.stderr, "/execute") || !strings.Contains(res.stderr, "curl") {
			t.Errorf("exec -v=9: %s", res)
		}
		if strings.Contains(res.stderr, token) {
			t.Errorf("exec -v=9 logged the claimant token:\n%s", res.stderr)
		}
		// Through the pod proxy the token travels in X-Sandbox-Token, a
		// header client-go does not mask: sandboxctl does. (The API server
		// refuses to proxy to a loopback pod IP; the request is logged
		// first.)
		res = h.runBinary(dir, bin, "-n", ns, "--via", "proxy", "-v=9", "exec", name, "--", "true")
		if !strings.Contains(res.stderr, "X-Sandbox-Token: "+masked) || strings.Contains(res.stderr, token) {
			t.Errorf("exec --via proxy -v=9 (the token must be masked): %s", res)
		}
		// -v=0 logs no requests.
		if res := h.runBinary(dir, bin, append(base, "exec", name, "--", "true")...); res.code != 0 || res.stderr != "" {
			t.Errorf("exec without -v: %s", res)
		}
	})

	t.Run("KubectlPlugin", func(t *testing.T) {
		root, err := testenv.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		kubectl := filepath.Join(root, "bin", "kubectl")
		if _, err := os.Stat(kubectl); err != nil {
			testenv.Missing(t, "bin/kubectl (make tools)")
		}
		res := h.runBinary(dir, kubectl, "sandbox", "--help")
		if res.code != 0 || !strings.Contains(res.stdout, "kubectl sandbox [command]") || !strings.Contains(res.stdout, "Exit codes:") {
			t.Errorf("kubectl sandbox --help: %s", res)
		}
		if res := h.runBinary(dir, kubectl, append([]string{"sandbox"}, append(base, "exec", name, "--", "sh", "-c", "echo hi; exit 6")...)...); res.code != 6 || res.stdout != "hi\n" {
			t.Errorf("kubectl sandbox exec: %s; want exit 6", res)
		}
		if res := h.runBinary(dir, kubectl, append([]string{"sandbox"}, append(base, "claim", "none", "--no-cold")...)...); res.code != exitNoSandbox {
			t.Errorf("kubectl sandbox claim --no-cold: %s; want exit %d", res, exitNoSandbox)
		}
		if res := h.runBinary(dir, kubectl, append([]string{"sandbox"}, append(base, "list", "-o", "name")...)...); res.code != 0 || res.stdout != "sandboxclaim.sandbox.io/"+name+"\n" {
			t.Errorf("kubectl sandbox list -o name: %s", res)
		}
		// kubectl completes the plugin's arguments through
		// kubectl_complete-sandbox.
		res = h.runBinary(dir, kubectl, "__complete", "sandbox", "-n", ns, "exec", "")
		if res.code != 0 || !strings.Contains(res.stdout, name+"\n") {
			t.Errorf("kubectl __complete sandbox exec: %s", res)
		}
		res = h.runBinary(dir, kubectl, "__complete", "sandbox", "-n", ns, "claim", "")
		if res.code != 0 || !strings.Contains(res.stdout, "bin\n") || !strings.Contains(res.stdout, "none\n") {
			t.Errorf("kubectl __complete sandbox claim: %s", res)
		}
	})
}
