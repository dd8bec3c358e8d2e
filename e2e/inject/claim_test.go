package inject

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
	"sandbox.io/injector/pool"
)

// sandboxctl runs bin/sandboxctl (built by make e2e) with the cluster's
// KUBECONFIG and returns its stdout, stderr and exit code.
func (x *env) sandboxctl(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(x.root, "bin", "sandboxctl"), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("running sandboxctl %q: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// mustSandboxctl runs sandboxctl and fails the test unless it exits 0.
func (x *env) mustSandboxctl(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, code := x.sandboxctl(t, "", args...)
	if code != 0 {
		t.Fatalf("sandboxctl %q exited %d: %s%s", args, code, stderr, out)
	}
	return out
}

// field returns the value of "name: value" in sandboxctl claim's output.
func field(out, name string) string {
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// createPool creates a SandboxPool of the busybox test image running
// sleep, changed by the mutate functions.
func (x *env) createPool(t *testing.T, ns, name string, perNode int32, mutate ...func(*v1alpha1.SandboxPool)) *v1alpha1.SandboxPool {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(x.rest, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	p := &v1alpha1.SandboxPool{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.SandboxPoolSpec{
			Template:    v1alpha1.SandboxTemplate{Image: x.testImage("busybox"), Command: []string{"sleep", "3600"}},
			PodsPerNode: ptr.To(perNode),
		},
	}
	for _, m := range mutate {
		m(p)
	}
	if err := c.Create(t.Context(), p); err != nil {
		t.Fatalf("creating pool %s/%s: %v", ns, name, err)
	}
	if p.Spec.WarmPodsPerNode() != perNode || p.UID == "" {
		t.Fatalf("created pool %s/%s with %d pods per node (uid %q), want %d", ns, name, p.Spec.WarmPodsPerNode(), p.UID, perNode)
	}
	return p
}

// warmPods creates n warm pods of p on the cluster's node, as the node
// agent does, and waits until they are Ready.
func (x *env) warmPods(t *testing.T, p *v1alpha1.SandboxPool, n int) []*corev1.Pod {
	t.Helper()
	nodes, err := x.kube.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("listing nodes: %v (%d nodes)", err, len(nodes.Items))
	}
	var pods []*corev1.Pod
	for range n {
		created, err := x.kube.CoreV1().Pods(p.Namespace).Create(t.Context(), pool.WarmPod(p, nodes.Items[0].Name), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating a warm pod: %v", err)
		}
		pods = append(pods, created)
	}
	for i, pod := range pods {
		pods[i] = x.waitReady(t, p.Namespace, pod.Name, 2*time.Minute)
	}
	return pods
}

func (x *env) waitGone(t *testing.T, ns, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := x.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Errorf("pod %s/%s still exists after release: %v", ns, name, err)
	}
}

// TestClaimWarmExecCopyRelease claims, with sandboxctl (through the API
// server's pod proxy, its default), the warm pod the node agent keeps for a
// pool, sees the claim's env in exec, gets the command's exit code, copies
// a file both ways and releases it; the agent refills the pool.
func TestClaimWarmExecCopyRelease(t *testing.T) {
	x := requireE2E(t)
	t.Cleanup(func() {
		if err := x.install(); err != nil {
			t.Errorf("going back to the chart without the agent: %v", err)
		}
		x.labelNodes(context.Background(), t, "")
	})
	x.installPoolAgent(t)
	x.agentPodReady(t, "")
	x.labelNodes(t.Context(), t, "true") // waits until the webhook has seen it
	ns := x.namespace(t, "claim", nil)
	p := x.createPool(t, ns, "shell", 1)
	warm := x.waitWarmReady(t, p, 1, v1alpha1.MethodImageVolume)[0]

	out := x.mustSandboxctl(t, "claim", "shell", "-n", ns, "--env", "K=from the claim", "--claimant", "e2e")
	t.Logf("sandboxctl claim:\n%s", out)
	pod := field(out, "pod")
	if pod != warm.Name || field(out, "origin") != v1alpha1.OriginWarm {
		t.Fatalf("claimed %q (origin %q), want the warm pod %s", pod, field(out, "origin"), warm.Name)
	}
	got, err := x.kube.CoreV1().Pods(ns).Get(t.Context(), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels[v1alpha1.LabelState] != v1alpha1.StateClaimed || got.Annotations[v1alpha1.AnnotationClaimedBy] != "e2e" {
		t.Errorf("claimed pod labels %v annotations %v", got.Labels, got.Annotations)
	}

	// The pool token no longer works on the claimed runner.
	if _, err := runnerClient(got, testToken).Status(t.Context()); err == nil {
		t.Errorf("the pool token still works after the claim")
	}

	if out := x.mustSandboxctl(t, "exec", "-n", ns, pod, "--", "sh", "-c", "echo $K"); out != "from the claim\n" {
		t.Errorf("exec echo $K printed %q, want the claim's env", out)
	}
	stdout, stderr, code := x.sandboxctl(t, "", "exec", "-n", ns, pod, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
	if code != 3 || stdout != "out\n" || stderr != "err\n" {
		t.Errorf("exec exit %d, stdout %q, stderr %q; want 3, out, err", code, stdout, stderr)
	}

	dir := t.TempDir()
	local := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(local, []byte("copied in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	x.mustSandboxctl(t, "cp", "-n", ns, local, pod+":work/in.txt")
	x.mustSandboxctl(t, "exec", "-n", ns, pod, "--", "sh", "-c", "tr a-z A-Z < work/in.txt > work/out.txt")
	back := filepath.Join(dir, "out.txt")
	x.mustSandboxctl(t, "cp", "-n", ns, pod+":work/out.txt", back)
	if b, err := os.ReadFile(back); err != nil || string(b) != "COPIED IN\n" {
		t.Errorf("copied back %q, %v", b, err)
	}

	// The agent sees the pool short and creates a replacement.
	if refill := x.waitWarmReady(t, p, 1, v1alpha1.MethodImageVolume)[0]; refill.Name == pod {
		t.Errorf("the claimed pod %s is counted warm again", pod)
	}

	if out := x.mustSandboxctl(t, "release", "-n", ns, pod); !strings.Contains(out, "released "+pod) {
		t.Errorf("release printed %q", out)
	}
	x.waitGone(t, ns, pod)
}

// TestClaimColdFallback claims from an empty pool: after --wait the claim
// creates a cold pod, says so loudly, and the sandbox works.
func TestClaimColdFallback(t *testing.T) {
	x := requireE2E(t)
	ns := x.namespace(t, "claim-cold", nil)
	// No command: the pool's pods idle (sandbox.io/child: none) until used.
	x.createPool(t, ns, "empty", 0, func(p *v1alpha1.SandboxPool) { p.Spec.Template.Command = nil })

	stdout, stderr, code := x.sandboxctl(t, "", "claim", "empty", "-n", ns, "--wait", "1s", "--env", "K=cold")
	if code != 0 {
		t.Fatalf("claim exited %d: %s", code, stderr)
	}
	t.Logf("sandboxctl claim:\n%s%s", stdout, stderr)
	if !strings.Contains(stderr, "COLD") || !strings.HasPrefix(field(stdout, "origin"), "COLD") {
		t.Errorf("the cold fallback was not loud: stdout %q, stderr %q", stdout, stderr)
	}
	pod := field(stdout, "pod")
	got, err := x.kube.CoreV1().Pods(ns).Get(t.Context(), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels[v1alpha1.LabelOrigin] != v1alpha1.OriginCold || got.Labels[v1alpha1.LabelState] != v1alpha1.StateClaimed || !injected(got) {
		t.Errorf("cold pod labels %v, injected %v", got.Labels, injected(got))
	}
	if out := x.mustSandboxctl(t, "exec", "-n", ns, pod, "--", "sh", "-c", "echo $K"); out != "cold\n" {
		t.Errorf("exec in the cold sandbox printed %q", out)
	}
	// A pool without a command idles: the runner has no child, and the
	// webhook did not run the image's CMD (busybox's sh) under it.
	cl, err := claim.New(x.rest, claim.Config{Transport: claim.TransportProxy})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := cl.Open(t.Context(), ns, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sb.Runner().Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got.Annotations[v1alpha1.AnnotationChild] != v1alpha1.ChildNone || st.Child != nil || st.Claim == nil {
		t.Errorf("idle pool pod: %s=%q, runner child %+v, claim %+v; want no child and the claim recorded",
			v1alpha1.AnnotationChild, got.Annotations[v1alpha1.AnnotationChild], st.Child, st.Claim)
	}
	// --no-cold refuses instead.
	if _, stderr, code := x.sandboxctl(t, "", "claim", "empty", "-n", ns, "--wait", "0", "--no-cold"); code == 0 || !strings.Contains(stderr, "no warm sandbox claimable") {
		t.Errorf("claim --no-cold of an empty pool exited %d: %s", code, stderr)
	}
	x.mustSandboxctl(t, "release", "-n", ns, pod)
	x.waitGone(t, ns, pod)
}
