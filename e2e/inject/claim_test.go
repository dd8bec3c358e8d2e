package inject

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
	"sandbox.io/injector/claim/controller"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner/api"
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

// shellQuote quotes s as one sh word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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

func (x *env) waitGone(t *testing.T, ns, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := x.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Errorf("pod %s/%s still exists: %v", ns, name, err)
	}
}

// waitClaim waits until the claim reaches one of phases.
func (x *env) waitClaim(t *testing.T, ns, name string, timeout time.Duration, phases ...v1alpha1.ClaimPhase) *v1alpha1.SandboxClaim {
	t.Helper()
	c := x.poolClient(t)
	var got v1alpha1.SandboxClaim
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &got); err != nil {
			return false, nil
		}
		return slices.Contains(phases, got.Status.Phase), nil
	})
	if err != nil {
		t.Fatalf("claim %s/%s not in %v: phase %q, conditions %+v", ns, name, phases, got.Status.Phase, got.Status.Conditions)
	}
	return &got
}

// TestClaimWarmExecCopyRelease claims, with sandboxctl (through the API
// server's pod proxy, its default), the warm pod the node agent keeps for a
// pool, sees the claim's env in exec, gets the command's exit code, copies
// a file both ways and releases it; the pod goes with the claim and the
// agent refills the pool. A claimant that deletes its claim with
// --cascade=orphan loses the sandbox all the same.
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
	if warm.Annotations[v1alpha1.AnnotationClaimNonce] == "" {
		t.Fatalf("warm pod %s has no claim nonce: %v", warm.Name, warm.Annotations)
	}

	out := x.mustSandboxctl(t, "claim", "shell", "-n", ns, "--env", "K=from the claim")
	t.Logf("sandboxctl claim:\n%s", out)
	name, pod := field(out, "claim"), field(out, "pod")
	if pod != warm.Name || field(out, "origin") != string(v1alpha1.OriginWarmPod) {
		t.Fatalf("claimed %q (origin %q), want the warm pod %s", pod, field(out, "origin"), warm.Name)
	}
	sbc := x.waitClaim(t, ns, name, time.Minute, v1alpha1.ClaimBound)
	if sbc.Status.PodName != pod || sbc.Status.PodIP == "" || sbc.Status.RunnerPort == 0 || sbc.Spec.Auth.TokenSHA256 == "" {
		t.Errorf("claim status %+v", sbc.Status)
	}
	got, err := x.kube.CoreV1().Pods(ns).Get(t.Context(), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pool.State(got) != v1alpha1.StateClaimed || pool.ClaimOwner(got) != name || !maps.Equal(got.Labels, warm.Labels) || !maps.Equal(got.Annotations, warm.Annotations) {
		t.Errorf("claimed pod: state %q, claim %q, labels %v, annotations %v (a claim changes neither)", pool.State(got), pool.ClaimOwner(got), got.Labels, got.Annotations)
	}
	if out, err := exec.CommandContext(t.Context(), x.kubectl, "get", "sandboxclaims.sandbox.io", "-n", ns).CombinedOutput(); err != nil || !strings.Contains(string(out), "Bound") {
		t.Errorf("kubectl get sandboxclaims: %v\n%s", err, out)
	} else {
		t.Logf("kubectl get sandboxclaims:\n%s", out)
	}

	if out := x.mustSandboxctl(t, "exec", "-n", ns, name, "--", "sh", "-c", "echo $K"); out != "from the claim\n" {
		t.Errorf("exec echo $K printed %q, want the claim's env", out)
	}
	stdout, stderr, code := x.sandboxctl(t, "", "exec", "-n", ns, name, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
	if code != 3 || stdout != "out\n" || stderr != "err\n" {
		t.Errorf("exec exit %d, stdout %q, stderr %q; want 3, out, err", code, stdout, stderr)
	}

	dir := t.TempDir()
	local := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(local, []byte("copied in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	x.mustSandboxctl(t, "cp", "-n", ns, local, name+":work/in.txt")
	x.mustSandboxctl(t, "exec", "-n", ns, name, "--", "sh", "-c", "tr a-z A-Z < work/in.txt > work/out.txt")
	back := filepath.Join(dir, "out.txt")
	x.mustSandboxctl(t, "cp", "-n", ns, name+":work/out.txt", back)
	if b, err := os.ReadFile(back); err != nil || string(b) != "COPIED IN\n" {
		t.Errorf("copied back %q, %v", b, err)
	}

	// The agent sees the pool short and creates a replacement.
	if refill := x.waitWarmReady(t, p, 1, v1alpha1.MethodImageVolume)[0]; refill.Name == pod {
		t.Errorf("the claimed pod %s is counted warm again", pod)
	}
	if out := x.mustSandboxctl(t, "release", "-n", ns, name); !strings.Contains(out, "sandboxclaim.sandbox.io/"+name+" released") {
		t.Errorf("release printed %q", out)
	}
	x.waitGone(t, ns, pod)
	x.orphanedClaimEndsItsSandbox(t, p)
}

// orphanedClaimEndsItsSandbox: a claimant (the chart's claimant role, no
// more) that deletes its claim with --cascade=orphan does not keep the
// sandbox, and the node agent refills the pool (no one counted the pod warm
// meanwhile). The claim controller deletes the pod as soon as it sees the
// claim being deleted (held by the orphan finalizer), or, when the garbage
// collector has removed the claim's owner reference from the pod first, as
// an orphan (an Event on the pool says so); which comes first varies. A
// pool deleted so leaves no warm pod behind either.
func (x *env) orphanedClaimEndsItsSandbox(t *testing.T, p *v1alpha1.SandboxPool) {
	ns := p.Namespace
	warm := x.waitWarmReady(t, p, 1, "")[0]
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "claimant", Namespace: ns}}
	if _, err := x.kube.CoreV1().ServiceAccounts(ns).Create(t.Context(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "claimant", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: release + "-claimant"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: ns}},
	}
	if _, err := x.kube.RbacV1().RoleBindings(ns).Create(t.Context(), rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	as := "--as=system:serviceaccount:" + ns + ":" + sa.Name
	manifest := fmt.Sprintf(`apiVersion: sandbox.io/v1alpha1
kind: SandboxClaim
metadata:
  name: kept-by-orphaning
  namespace: %s
spec:
  poolName: %s
  coldStart: Never
  auth:
    tokenSHA256: %s
`, ns, p.Name, claim.TokenSHA256("orphaning-claimant-token-0123456789"))
	create := exec.CommandContext(t.Context(), x.kubectl, "create", as, "-f", "-")
	create.Stdin = strings.NewReader(manifest)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("kubectl create as the claimant: %v\n%s", err, out)
	}
	sbc := x.waitClaim(t, ns, "kept-by-orphaning", time.Minute, v1alpha1.ClaimBound, v1alpha1.ClaimFailed)
	if sbc.Status.Phase != v1alpha1.ClaimBound || sbc.Status.PodName != warm.Name {
		t.Fatalf("claim %s to pod %q (%+v), want Bound to the warm pod %s", sbc.Status.Phase, sbc.Status.PodName, sbc.Status.Conditions, warm.Name)
	}
	del := exec.CommandContext(t.Context(), x.kubectl, "delete", as, "-n", ns, "sandboxclaim.sandbox.io/kept-by-orphaning", "--cascade=orphan")
	if out, err := del.CombinedOutput(); err != nil {
		t.Fatalf("kubectl delete --cascade=orphan as the claimant: %v\n%s", err, out)
	}
	x.waitGone(t, ns, warm.Name)
	refill := x.waitWarmReady(t, p, 1, "")[0]
	if refill.Name == warm.Name {
		t.Errorf("the orphaned pod %s is counted warm", warm.Name)
	}
	orphanEvent := func(pod string) string {
		events, err := x.kube.EventsV1().Events(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events.Items {
			if ev.Reason == controller.ReasonOrphanedPodDeleted && ev.Related != nil && ev.Related.Name == pod {
				return ev.Note
			}
		}
		return ""
	}
	how := "released as its claim was being deleted"
	if note := orphanEvent(warm.Name); note != "" {
		how = "deleted as an orphan: " + note
	}
	t.Logf("pod %s of the claim deleted with --cascade=orphan: %s", warm.Name, how)

	// The pool deleted the same way leaves its warm pod to the garbage
	// collector's orphaning alone: the claim controller deletes it.
	del = exec.CommandContext(t.Context(), x.kubectl, "delete", "-n", ns, "sandboxpool.sandbox.io/"+p.Name, "--cascade=orphan")
	if out, err := del.CombinedOutput(); err != nil {
		t.Fatalf("kubectl delete --cascade=orphan of the pool: %v\n%s", err, out)
	}
	x.waitGone(t, ns, refill.Name)
	if note := orphanEvent(refill.Name); note == "" {
		t.Errorf("no %s Event names the pool's orphaned warm pod %s", controller.ReasonOrphanedPodDeleted, refill.Name)
	} else {
		t.Logf("warm pod %s of the pool deleted with --cascade=orphan: %s", refill.Name, note)
	}
}

// TestClaimWithKubectl: a person with only kubectl claims a sandbox:
// kubectl create of a SandboxClaim with the digest of a token they made,
// kubectl wait until Bound, then the runner answers that token through the
// API server's pod proxy.
func TestClaimWithKubectl(t *testing.T) {
	x := requireE2E(t)
	ns := x.namespace(t, "claim-kubectl", nil)
	x.createPool(t, ns, "empty", 0, func(p *v1alpha1.SandboxPool) { p.Spec.Template.Command = nil })
	token := "kubectl-made-token-0123456789abcdef"
	manifest := fmt.Sprintf(`apiVersion: sandbox.io/v1alpha1
kind: SandboxClaim
metadata:
  name: by-hand
  namespace: %s
spec:
  poolName: empty
  activeDeadlineSeconds: 600
  auth:
    tokenSHA256: %s
`, ns, claim.TokenSHA256(token))
	create := exec.CommandContext(t.Context(), x.kubectl, "create", "-f", "-")
	create.Stdin = strings.NewReader(manifest)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("kubectl create: %v\n%s", err, out)
	}
	wait := exec.CommandContext(t.Context(), x.kubectl, "wait", "-n", ns, "sandboxclaim.sandbox.io/by-hand", "--for=jsonpath={.status.phase}=Bound", "--timeout=3m")
	if out, err := wait.CombinedOutput(); err != nil {
		t.Fatalf("kubectl wait: %v\n%s", err, out)
	}
	sbc := x.waitClaim(t, ns, "by-hand", time.Minute, v1alpha1.ClaimBound)
	if sbc.Status.Origin != v1alpha1.OriginColdPod || sbc.Status.ExpiresAt == nil {
		t.Errorf("status %+v", sbc.Status)
	}
	cl, err := claim.New(x.rest, claim.Config{Transport: claim.TransportProxy})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := cl.Open(t.Context(), ns, "by-hand", token, "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := sb.Runner().Execute(t.Context(), api.ExecuteRequest{Shell: "echo made by hand"})
	if err != nil || res.Stdout != "made by hand\n" {
		t.Fatalf("execute: %+v, %v", res, err)
	}
	if out, err := exec.CommandContext(t.Context(), x.kubectl, "delete", "-n", ns, "sandboxclaim.sandbox.io/by-hand").CombinedOutput(); err != nil {
		t.Fatalf("kubectl delete: %v\n%s", err, out)
	}
	x.waitGone(t, ns, sbc.Status.PodName)
}

// TestClaimColdFallback claims from an empty pool: the claim gets a cold
// pod, says so loudly, and the sandbox works; a claim that forbids a cold
// start fails at once; a short lifetime deletes the pod and leaves the claim
// Expired.
func TestClaimColdFallback(t *testing.T) {
	x := requireE2E(t)
	ns := x.namespace(t, "claim-cold", nil)
	// No command: the pool's pods idle (sandbox.io/child: none) until used.
	x.createPool(t, ns, "empty", 0, func(p *v1alpha1.SandboxPool) { p.Spec.Template.Command = nil })

	stdout, stderr, code := x.sandboxctl(t, "", "claim", "empty", "-n", ns, "--env", "K=cold", "--lifetime", "20s")
	if code != 0 {
		t.Fatalf("claim exited %d: %s", code, stderr)
	}
	t.Logf("sandboxctl claim:\n%s%s", stdout, stderr)
	if !strings.Contains(stderr, "COLD") || !strings.HasPrefix(field(stdout, "origin"), "COLD") {
		t.Errorf("the cold fallback was not loud: stdout %q, stderr %q", stdout, stderr)
	}
	name, pod := field(stdout, "claim"), field(stdout, "pod")
	got, err := x.kube.CoreV1().Pods(ns).Get(t.Context(), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels[v1alpha1.LabelOrigin] != v1alpha1.OriginCold || pool.State(got) != v1alpha1.StateClaimed || !injected(got) {
		t.Errorf("cold pod labels %v, injected %v", got.Labels, injected(got))
	}
	if out := x.mustSandboxctl(t, "exec", "-n", ns, name, "--", "sh", "-c", "echo $K"); out != "cold\n" {
		t.Errorf("exec in the cold sandbox printed %q", out)
	}
	if got.Annotations[v1alpha1.AnnotationChild] != v1alpha1.ChildNone {
		t.Errorf("idle pool pod: %s=%q, want none", v1alpha1.AnnotationChild, got.Annotations[v1alpha1.AnnotationChild])
	}
	// --no-cold refuses instead.
	if _, stderr, code := x.sandboxctl(t, "", "claim", "empty", "-n", ns, "--no-cold"); code == 0 || !strings.Contains(stderr, "no sandbox free") {
		t.Errorf("claim --no-cold of an empty pool exited %d: %s", code, stderr)
	}
	// The lifetime ends: the pod is deleted, the claim says Expired, exec
	// says so.
	expired := x.waitClaim(t, ns, name, 2*time.Minute, v1alpha1.ClaimExpired)
	t.Logf("expired claim: %+v", expired.Status.Conditions)
	x.waitGone(t, ns, pod)
	if _, stderr, code := x.sandboxctl(t, "", "exec", "-n", ns, name, "--", "true"); code == 0 || !strings.Contains(stderr, "expired") {
		t.Errorf("exec in an expired sandbox exited %d: %s", code, stderr)
	}
}

// TestAttackPlantedProcess replays the pool-token takeover: code in a
// claimed sandbox tries to reach the runner of the pool's next warm pod
// (which will hold the next claimant's env) with everything it can find
// (its own runner's claim verifier, any token file); every request is
// refused, and the next claimant's sandbox holds nothing of it.
func TestAttackPlantedProcess(t *testing.T) {
	x := requireE2E(t)
	t.Cleanup(func() {
		if err := x.install(); err != nil {
			t.Errorf("going back to the chart without the agent: %v", err)
		}
	})
	x.installPoolAgent(t)
	x.agentPodReady(t, "")
	ns := x.namespace(t, "claim-attack", nil)
	p := x.createPool(t, ns, "shared", 2)
	x.waitWarmReady(t, p, 2, "")

	attacker := x.mustSandboxctl(t, "claim", "shared", "-n", ns)
	aName := field(attacker, "claim")
	// What the attacker can see in its own sandbox: no token file, and its
	// runner's command line holds only a digest.
	stdout, _, _ := x.sandboxctl(t, "", "exec", "-n", ns, aName, "--", "sh", "-c",
		"ls /var/run/sandbox-token 2>&1; tr '\\0' ' ' < /proc/1/cmdline")
	t.Logf("inside the attacker's sandbox:\n%s", stdout)
	if strings.Contains(stdout, "--token-file") {
		t.Errorf("a pool pod's runner reads a token file: %s", stdout)
	}
	verifier := ""
	for _, f := range strings.Fields(stdout) {
		if v, ok := strings.CutPrefix(f, "--claim-verifier=sha256:"); ok {
			verifier = v
		}
	}
	// Every warm pod of the pool (the agent refilled it): the victim will
	// get one of them. The attacker speaks HTTP/1.0 through busybox nc
	// (busybox wget segfaults here), so each answer is a real status line.
	status := func(target corev1.Pod, method, path, cred, body string) string {
		t.Helper()
		req := fmt.Sprintf("%s %s HTTP/1.0\r\nHost: runner\r\n%s: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			method, path, api.TokenHeader, cred, len(body), body)
		script := fmt.Sprintf("printf '%%s' %s | nc -w 5 %s %d | head -n 1", shellQuote(req), target.Status.PodIP, api.DefaultPort)
		out, _, _ := x.sandboxctl(t, "", "exec", "-n", ns, aName, "--", "sh", "-c", script)
		return strings.TrimSpace(out)
	}
	refused := func(line string) bool {
		return strings.HasPrefix(line, "HTTP/1.0 401 ") || strings.HasPrefix(line, "HTTP/1.0 403 ") ||
			strings.HasPrefix(line, "HTTP/1.1 401 ") || strings.HasPrefix(line, "HTTP/1.1 403 ")
	}
	for _, target := range x.waitWarmReady(t, p, 2, "") {
		// The control: the attacker's sandbox does reach this runner.
		if line := status(target, "GET", api.PathHealthz, "", ""); !strings.Contains(line, " 200 ") {
			t.Fatalf("the attacker's sandbox cannot reach %s's runner (%s): the attacks below would prove nothing", target.Name, line)
		}
		attacks := []struct{ method, path, cred, body string }{
			{"POST", api.PathExecute, verifier, `{"argv":["sh","-c","sleep 600"]}`},
			{"POST", api.PathExecute, "", `{"argv":["sh","-c","sleep 600"]}`},
			{"POST", api.PathExecute, "guess-0123456789abcdef", `{"argv":["sh","-c","sleep 600"]}`},
			{"PUT", api.PathFiles + "/planted.sh", verifier, "sleep 600"},
			{"POST", api.PathClaim, verifier, `{}`},
		}
		for _, a := range attacks {
			line := status(target, a.method, a.path, a.cred, a.body)
			t.Logf("%s %s on %s with %q: %s", a.method, a.path, target.Name, a.cred, line)
			if !refused(line) {
				t.Errorf("%s %s on %s with %q was not refused: %q", a.method, a.path, target.Name, a.cred, line)
			}
		}
	}
	victim := x.mustSandboxctl(t, "claim", "shared", "-n", ns, "--env", "SECRET_API_KEY=victim-secret")
	vName := field(victim, "claim")
	ps := x.mustSandboxctl(t, "exec", "-n", ns, vName, "--", "ps", "-o", "pid,args")
	if strings.Contains(ps, "sleep 600") {
		t.Errorf("a planted process runs in the victim's sandbox:\n%s", ps)
	}
	x.mustSandboxctl(t, "release", "-n", ns, aName, vName)
}
