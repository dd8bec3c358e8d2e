package main

import (
	"bytes"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner"
)

// run runs sandboxctl with args against cfg (namespace "default" unless -n)
// and returns its stdout, stderr and error.
func run(t *testing.T, cfg *rest.Config, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	r := newRoot(strings.NewReader(stdin), &stdout, &stderr)
	r.load = func(string) (*rest.Config, string, error) { return cfg, "default", nil }
	cmd := newRootCmd(r)
	cmd.SetArgs(args)
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.ExecuteContext(t.Context())
	return stdout.String(), stderr.String(), err
}

func TestFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"claim", "p", "--via", "carrier-pigeon"}, `transport "carrier-pigeon" is not direct or proxy`},
		{[]string{"claim", "p", "--env", "NOVALUE"}, `--env "NOVALUE" is not K=V`},
		{[]string{"claim", "p", "-o", "yaml"}, `--output "yaml" is not text, name or json`},
		{[]string{"claim", "p", "--wait", "-1s"}, `--wait -1s is negative`},
		{[]string{"claim"}, `accepts 1 arg(s)`},
		{[]string{"exec", "pod", "echo", "hi"}, `want exec POD -- COMMAND`},
		{[]string{"exec", "pod", "--"}, `want exec POD -- COMMAND`},
		{[]string{"cp", "a", "b"}, `want exactly one of SRC and DST as POD:PATH`},
		{[]string{"cp", "p:a", "q:b"}, `want exactly one of SRC and DST as POD:PATH`},
		{[]string{"cp", "./local", "p:"}, `the sandbox path is empty`},
		{[]string{"release"}, `requires at least 1 arg(s)`},
	} {
		_, _, err := run(t, &rest.Config{Host: "http://127.0.0.1:1"}, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sandboxctl %q: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestRemotePath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, pod, path string
		ok            bool
	}{
		{"pod:dir/f.txt", "pod", "dir/f.txt", true},
		{"./a:b", "", "", false},
		{"/tmp/x:y", "", "", false},
		{"plain.txt", "", "", false},
		{":x", "", "", false},
	} {
		pod, path, ok := remotePath(tc.in)
		if pod != tc.pod || path != tc.path || ok != tc.ok {
			t.Errorf("remotePath(%q) = %q, %q, %v", tc.in, pod, path, ok)
		}
	}
}

// TestCommands drives claim, exec, cp, pools and release against a real API
// server and a real runner on loopback (the pod's IP and port point at it).
func TestCommands(t *testing.T) {
	cfg, _ := testenv.StartWithCRDs(t)
	kube := kubernetes.NewForConfigOrDie(cfg)
	ctx := t.Context()
	const ns, poolToken = "default", "pool-token-0123456789abcdef"
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: claim.DefaultTokenSecret},
		Data:       map[string][]byte{v1alpha1.TokenSecretKey: []byte(poolToken)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := &v1alpha1.SandboxPool{
		ObjectMeta: metav1.ObjectMeta{Name: "shell", Namespace: ns},
		Spec:       v1alpha1.SandboxPoolSpec{Template: v1alpha1.SandboxTemplate{Image: "busybox"}, PodsPerNode: ptr.To[int32](1)},
	}
	createPool(t, cfg, p)

	// A real runner behind a warm pod.
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(poolToken), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := runner.New(runner.Config{TokenFile: tokenFile, Workdir: filepath.Join(dir, "work")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	pod := pool.WarmPod(p, "node-a")
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: claim.RunnerPortName, ContainerPort: int32(hs.Listener.Addr().(*net.TCPAddr).Port)}}
	pod, err = kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = "127.0.0.1"
	pod.Status.PodIPs = []corev1.PodIP{{IP: "127.0.0.1"}}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if _, err := kube.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	out, _, err := run(t, cfg, "", "pools")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "shell") || !strings.Contains(out, "node-a") || !strings.Contains(out, "busybox") {
		t.Errorf("pools printed\n%s\nwant the pool, its image and node-a's entry", out)
	}

	script := filepath.Join(t.TempDir(), "task.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho task\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, cfg, "", "claim", "shell", "--via", "direct", "--file", script+".missing", "--no-cold"); err == nil || !strings.Contains(err.Error(), "task.sh.missing") {
		t.Fatalf("claim with a missing --file: %v, want an error naming it", err)
	}
	out, stderr, err := run(t, cfg, "", "claim", "shell", "--via", "direct", "--env", "GREETING=hi there", "--env", "B=x=y", "-o", "name", "--no-cold", "--wait", "0",
		"--file", script, "--file", script+":bin/again.sh")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != pod.Name {
		t.Fatalf("claim -o name printed %q (stderr %q), want %s", out, stderr, pod.Name)
	}
	if stderr != "" {
		t.Errorf("a warm claim wrote to stderr: %q", stderr)
	}
	if out, _, err := run(t, cfg, "", "exec", pod.Name, "--via", "direct", "--", "sh", "-c", "./task.sh; ./bin/again.sh; stat -c %a task.sh"); err != nil || out != "task\ntask\n750\n" {
		t.Errorf("the claim's --file copies: %q, %v; want both run, mode 750", out, err)
	}

	out, stderr, err = run(t, cfg, "", "exec", pod.Name, "--via", "direct", "--", "sh", "-c", `echo "$GREETING" "$B"; echo err >&2; exit 7`)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 7 {
		t.Errorf("exec: err = %v, want exit code 7", err)
	}
	if out != "hi there x=y\n" || stderr != "err\n" {
		t.Errorf("exec printed %q and %q on stderr, want the claim's env", out, stderr)
	}
	if _, _, err := run(t, cfg, "from stdin", "exec", "-n", ns, pod.Name, "--via", "direct", "-i", "--", "sh", "-c", "cat > in.txt"); err != nil {
		t.Errorf("exec -i: %v", err)
	}

	local := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(local, []byte("#!/bin/sh\ntr a-z A-Z < in.txt\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, cfg, "", "cp", local, pod.Name+":bin/up.sh", "--via", "direct"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, cfg, "", "exec", pod.Name, "--via", "direct", "--", "sh", "-c", "./bin/up.sh > out.txt"); err != nil {
		t.Fatalf("running the copied script (mode kept): %v", err)
	}
	back := filepath.Join(t.TempDir(), "out.txt")
	if _, _, err := run(t, cfg, "", "cp", pod.Name+":out.txt", back, "--via", "direct"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(back); err != nil || string(b) != "FROM STDIN" {
		t.Errorf("copied back %q, %v; want FROM STDIN", b, err)
	}
	if out, _, err := run(t, cfg, "", "cp", pod.Name+":out.txt", "-", "--via", "direct"); err != nil || out != "FROM STDIN" {
		t.Errorf("cp to stdout printed %q, %v", out, err)
	}
	if _, _, err := run(t, cfg, "", "cp", pod.Name+":missing.txt", filepath.Join(t.TempDir(), "x"), "--via", "direct"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("cp of a missing file: err = %v, want the runner's 404", err)
	}

	// A pool with nothing left and no cold fallback: a clear error.
	if _, _, err := run(t, cfg, "", "claim", "shell", "--via", "direct", "--no-cold", "--wait", "100ms"); !errors.Is(err, claim.ErrNoSandbox) {
		t.Errorf("claim of an empty pool with --no-cold: err = %v, want ErrNoSandbox", err)
	}

	out, _, err = run(t, cfg, "", "release", pod.Name)
	if err != nil || !strings.Contains(out, "released "+pod.Name) {
		t.Errorf("release printed %q, %v", out, err)
	}
	got, err := kube.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) && (err != nil || got.DeletionTimestamp == nil) {
		t.Errorf("released pod: %v, want it gone or being deleted", err)
	}
}

func createPool(t *testing.T, cfg *rest.Config, p *v1alpha1.SandboxPool) {
	t.Helper()
	scheme := clientScheme(t)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	p.Status = v1alpha1.SandboxPoolStatus{Desired: 1, Ready: 1, Nodes: []v1alpha1.NodePoolStatus{{Node: "node-a", Desired: 1, Warm: 1, Ready: 1}}}
	if err := c.Status().Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

func clientScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}
