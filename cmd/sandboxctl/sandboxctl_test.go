package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
	"sandbox.io/injector/internal/claimtest"
	"sandbox.io/injector/internal/testenv"
)

// bindTimeout bounds every wait on the controller: generous, for a loaded
// two-core machine.
const bindTimeout = 90 * time.Second

// harness runs sandboxctl commands in-process against a real API server
// with the claim controller and real runners (claimtest).
type harness struct {
	t          *testing.T
	e          *claimtest.Env
	kubeconfig string
	tokens     string
}

// result is what one sandboxctl run printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

func startHarness(t *testing.T) *harness {
	t.Helper()
	e := claimtest.Start(t, claimtest.Options{})
	e.Node("node-a")
	return &harness{t: t, e: e, kubeconfig: writeKubeconfig(t, e.Config), tokens: t.TempDir()}
}

// writeKubeconfig writes a kubeconfig of cfg (envtest's admin user) whose
// context has no namespace.
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("writing the kubeconfig: %v", err)
	}
	return path
}

// run runs sandboxctl in namespace ns (through --via direct: the API
// server does not proxy to loopback pod IPs).
func (h *harness) run(ns, stdin string, args ...string) result {
	h.t.Helper()
	return h.runContext(h.t.Context(), ns, stdin, nil, args...)
}

// runContext is run with a context and, when stderr is not nil, a writer
// of its own for stderr (read while the command runs).
func (h *harness) runContext(ctx context.Context, ns, stdin string, stderr io.Writer, args ...string) result {
	var out, errb bytes.Buffer
	if stderr == nil {
		stderr = &errb
	}
	r := newRoot(strings.NewReader(stdin), &out, stderr)
	r.tokens.dir = h.tokens
	cmd := newRootCmd(r)
	cmd.SetArgs(append([]string{"--kubeconfig", h.kubeconfig, "-n", ns, "--via", "direct"}, args...))
	err := cmd.ExecuteContext(ctx)
	if ee := (exitError{}); err != nil && !errors.As(err, &ee) {
		fmt.Fprintf(stderr, "sandboxctl: %v\n", err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: exitCode(err)}
}

// must runs sandboxctl and fails the test unless it exits 0.
func (h *harness) must(ns string, args ...string) result {
	h.t.Helper()
	res := h.run(ns, "", args...)
	if res.code != 0 {
		h.t.Fatalf("sandboxctl %q: %s", args, res)
	}
	return res
}

// pool makes a pool with n warm pods (real runners) on node-a.
func (h *harness) pool(ns, name string, n int) {
	h.t.Helper()
	p := h.e.Pool(ns, name, int32(n))
	for range n {
		h.e.WarmPod(p, "node-a")
	}
}

// claimText claims from pool with the default output and returns the
// claim's name.
func (h *harness) claimText(ns, pool string, args ...string) string {
	h.t.Helper()
	res := h.must(ns, append([]string{"claim", pool, "--timeout", bindTimeout.String()}, args...)...)
	name := field(res.stdout, "claim")
	if name == "" {
		h.t.Fatalf("claim printed no claim name: %s", res)
	}
	return name
}

func (h *harness) get(ns, name string) (*v1alpha1.SandboxClaim, error) {
	var sbc v1alpha1.SandboxClaim
	err := h.e.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &sbc)
	return &sbc, err
}

// field returns the value of "name: value" in claim's default output.
func field(out, name string) string {
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestSandboxctl drives every command against one API server with the
// claim controller and real runners; each subtest has its own namespace.
func TestSandboxctl(t *testing.T) {
	h := startHarness(t)
	t.Run("ClaimOutputs", h.testClaimOutputs)
	t.Run("Exec", h.testExec)
	t.Run("Cp", h.testCp)
	t.Run("ExtendAndExpiry", h.testExtendAndExpiry)
	t.Run("ListAndPools", h.testListAndPools)
	t.Run("Release", h.testRelease)
	t.Run("NoSandboxFree", h.testNoSandboxFree)
	t.Run("ColdFallbackShowsWhatItWaitsFor", h.testColdWaiting)
	t.Run("Completion", h.testCompletion)
	t.Run("Binary", h.testBinary)
}

func (h *harness) testClaimOutputs(t *testing.T) {
	ns := h.e.Namespace()
	h.pool(ns, "python", 4)

	// Text: where the sandbox is; the token is stored 0600, the claim
	// holds only its digest.
	res := h.must(ns, "claim", "python", "--env", "K=V", "--timeout", bindTimeout.String())
	name := field(res.stdout, "claim")
	if field(res.stdout, "pool") != "python" || field(res.stdout, "namespace") != ns || field(res.stdout, "node") != "node-a" ||
		field(res.stdout, "origin") != string(v1alpha1.OriginWarmPod) || field(res.stdout, "pod") == "" || !strings.HasPrefix(field(res.stdout, "address"), "http://127.0.0.1:") {
		t.Errorf("claim printed:\n%s", res.stdout)
	}
	tokenFile := filepath.Join(h.tokens, ns, name)
	fi, err := os.Stat(tokenFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stored token %s: %v, %v; want mode 0600", tokenFile, fi, err)
	}
	tok := h.must(ns, "token", name).stdout
	sbc, err := h.get(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if sbc.Spec.Auth.TokenSHA256 != claim.TokenSHA256(strings.TrimSpace(tok)) || strings.Contains(string(mustJSON(t, sbc)), strings.TrimSpace(tok)) {
		t.Errorf("the claim's tokenSHA256 %q is not the stored token's digest, or the claim holds the token", sbc.Spec.Auth.TokenSHA256)
	}

	// JSON and YAML: the SandboxClaim, typed.
	for _, format := range []string{"json", "yaml"} {
		res := h.must(ns, "claim", "python", "-o", format, "--timeout", bindTimeout.String())
		var got v1alpha1.SandboxClaim
		if err := yaml.Unmarshal([]byte(res.stdout), &got); err != nil {
			t.Fatalf("-o %s: %v\n%s", format, err, res.stdout)
		}
		if got.Kind != "SandboxClaim" || got.APIVersion != v1alpha1.GroupVersion.String() || got.Status.Phase != v1alpha1.ClaimBound ||
			got.Spec.PoolName != "python" || got.Status.PodName == "" || got.Namespace != ns {
			t.Errorf("-o %s printed:\n%s", format, res.stdout)
		}
		if format == "json" && !json.Valid([]byte(res.stdout)) {
			t.Errorf("-o json is not JSON:\n%s", res.stdout)
		}
	}

	// Name: kubectl's TYPE/NAME, which the other commands take.
	res = h.must(ns, "claim", "python", "-o", "name", "--timeout", bindTimeout.String())
	typed := strings.TrimSpace(res.stdout)
	if !strings.HasPrefix(typed, "sandboxclaim.sandbox.io/python-") || strings.Count(res.stdout, "\n") != 1 {
		t.Fatalf("-o name printed %q", res.stdout)
	}
	if out := h.must(ns, "exec", typed, "--", "sh", "-c", "echo ok").stdout; out != "ok\n" {
		t.Errorf("exec %s printed %q", typed, out)
	}
	if out := h.must(ns, "exec", name, "--", "sh", "-c", "echo $K").stdout; out != "V\n" {
		t.Errorf("exec echo $K printed %q, want the claim's env", out)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h *harness) testExec(t *testing.T) {
	ns := h.e.Namespace()
	h.pool(ns, "shell", 1)
	name := h.claimText(ns, "shell")

	// The remote command's exit code, stdout and stderr pass through.
	res := h.run(ns, "", "exec", name, "--", "sh", "-c", "echo out; echo err >&2; exit 7")
	if res.code != 7 || res.stdout != "out\n" || res.stderr != "err\n" {
		t.Errorf("exec exit 7: %s", res)
	}
	// stdin with -i.
	res = h.run(ns, "line one\nline two\n", "exec", "-i", name, "--", "wc", "-l")
	if res.code != 0 || strings.TrimSpace(res.stdout) != "2" {
		t.Errorf("exec -i wc -l: %s", res)
	}
	// A command that does not exist: 127 and why.
	res = h.run(ns, "", "exec", name, "--", "no-such-command-sandboxctl")
	if res.code != 127 || !strings.Contains(res.stderr, "no-such-command-sandboxctl") {
		t.Errorf("exec of a missing command: %s", res)
	}
	// A wrong --claim-token is refused by the runner (exit 1).
	wrong := h.run(ns, "", "--claim-token", "not-the-token-0123456789abcdef", "exec", name, "--", "true")
	if wrong.code != exitFailure || !strings.Contains(wrong.stderr, "token") {
		t.Errorf("exec with another token: %s", wrong)
	}
}

func (h *harness) testCp(t *testing.T) {
	ns := h.e.Namespace()
	h.pool(ns, "files", 1)
	name := h.claimText(ns, "files")
	dir := t.TempDir()
	local := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(local, []byte("#!/bin/sh\necho ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// In, keeping the mode: it runs.
	h.must(ns, "cp", local, name+":bin/run.sh")
	if out := h.must(ns, "exec", name, "--", "./bin/run.sh").stdout; out != "ran\n" {
		t.Errorf("the copied script printed %q", out)
	}
	// Out, to a file and to stdout; typed claim names work too.
	h.must(ns, "exec", name, "--", "sh", "-c", "echo result > out.txt")
	back := filepath.Join(dir, "out.txt")
	h.must(ns, "cp", "sandboxclaim.sandbox.io/"+name+":out.txt", back)
	if b, err := os.ReadFile(back); err != nil || string(b) != "result\n" {
		t.Errorf("copied out %q, %v", b, err)
	}
	if out := h.must(ns, "cp", name+":out.txt", "-").stdout; out != "result\n" {
		t.Errorf("cp to stdout printed %q", out)
	}
	// In from stdin.
	if res := h.run(ns, "from stdin\n", "cp", "-", "sbc/"+name+":in.txt"); res.code != 0 {
		t.Fatalf("cp - : %s", res)
	}
	if out := h.must(ns, "exec", name, "--", "cat", "in.txt").stdout; out != "from stdin\n" {
		t.Errorf("cat in.txt printed %q", out)
	}
	// Both local, or a missing file: refused.
	if res := h.run(ns, "", "cp", local, back); res.code != exitFailure || !strings.Contains(res.stderr, "exactly one") {
		t.Errorf("cp of two local paths: %s", res)
	}
	if res := h.run(ns, "", "cp", name+":missing.txt", filepath.Join(dir, "m")); res.code == 0 {
		t.Errorf("cp of a missing file: %s", res)
	}
}

func (h *harness) testExtendAndExpiry(t *testing.T) {
	ns := h.e.Namespace()
	h.pool(ns, "timed", 2)

	// A claim with a lifetime, extended to an hour from now.
	name := h.claimText(ns, "timed", "--lifetime", "10m")
	res := h.must(ns, "extend", name, "1h")
	if !strings.HasPrefix(res.stdout, "sandboxclaim.sandbox.io/"+name+" extended: expires at ") {
		t.Errorf("extend printed %q", res.stdout)
	}
	res = h.must(ns, "extend", "sbc/"+name, "2h", "-o", "jsonpath={.spec.activeDeadlineSeconds}")
	var secs int64
	if _, err := fmt.Sscan(res.stdout, &secs); err != nil || secs < 7200 || secs > 7200+int64(bindTimeout/time.Second) {
		t.Errorf("extend -o jsonpath printed %q, want about 7200 seconds", res.stdout)
	}
	testenv.Eventually(t, bindTimeout, "the controller's new expiry", func() error {
		sbc, err := h.get(ns, name)
		if err != nil {
			return err
		}
		if sbc.Status.ExpiresAt == nil || time.Until(sbc.Status.ExpiresAt.Time) < 100*time.Minute {
			return fmt.Errorf("expiresAt %v", sbc.Status.ExpiresAt)
		}
		return nil
	})

	// A claim that expires: exec and extend exit 4.
	short := h.claimText(ns, "timed", "--lifetime", "1s")
	h.e.WaitPhase(ns, short, bindTimeout, v1alpha1.ClaimExpired)
	if res := h.run(ns, "", "exec", short, "--", "true"); res.code != exitExpired || !strings.Contains(res.stderr, "expired") {
		t.Errorf("exec in an expired sandbox: %s; want exit %d", res, exitExpired)
	}
	if res := h.run(ns, "", "extend", short, "1m"); res.code != exitExpired {
		t.Errorf("extend of an expired claim: %s; want exit %d", res, exitExpired)
	}
	// list says so.
	if out := h.must(ns, "list").stdout; !strings.Contains(lineOf(out, short), "Expired") || !strings.Contains(lineOf(out, name), "in ") {
		t.Errorf("list:\n%s", out)
	}
}

// lineOf returns the first line of out that starts with name.
func lineOf(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

func (h *harness) testListAndPools(t *testing.T) {
	ns := h.e.Namespace()
	h.pool(ns, "alpha", 2)
	h.pool(ns, "beta", 0)
	a := h.claimText(ns, "alpha", "--lifetime", "30m")

	out := h.must(ns, "list").stdout
	header := strings.Fields(strings.SplitN(out, "\n", 2)[0])
	if strings.Join(header, " ") != "NAME POOL PHASE POD ORIGIN EXPIRES AGE" {
		t.Errorf("list header %q", header)
	}
	row := strings.Fields(lineOf(out, a))
	sbc, err := h.get(ns, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(row) < 7 || row[1] != "alpha" || row[2] != "Bound" || row[3] != sbc.Status.PodName || row[4] != "Warm" || row[5] != "in" {
		t.Errorf("list row of %s: %q\n%s", a, row, out)
	}
	if out := h.must(ns, "list", "-o", "wide").stdout; !strings.Contains(out, "NODE") || !strings.Contains(lineOf(out, a), "node-a") || !strings.Contains(lineOf(out, a), "127.0.0.1:") {
		t.Errorf("list -o wide:\n%s", out)
	}
	if out := h.must(ns, "list", "-o", "name").stdout; out != "sandboxclaim.sandbox.io/"+a+"\n" {
		t.Errorf("list -o name printed %q", out)
	}
	if out := h.must(ns, "list", "-o", "custom-columns=CLAIM:.metadata.name,POD:.status.podName", "--no-headers").stdout; strings.Join(strings.Fields(out), " ") != a+" "+sbc.Status.PodName {
		t.Errorf("list -o custom-columns printed %q", out)
	}
	if out := h.must(ns, "list", "-A").stdout; !strings.HasPrefix(out, "NAMESPACE") || !strings.Contains(out, ns) {
		t.Errorf("list -A:\n%s", out)
	}
	if res := h.must(h.e.Namespace(), "list"); res.stdout != "" || !strings.Contains(res.stderr, "No sandbox claims found") {
		t.Errorf("list of an empty namespace: %s", res)
	}

	// pools: the table, wide with the nodes, JSON as a List.
	testenv.Eventually(t, bindTimeout, "pool alpha's status", func() error {
		out := h.must(ns, "pools").stdout
		row := strings.Fields(lineOf(out, "alpha"))
		// NAME IMAGE PER NODE DESIRED READY WARM CLAIMED AGE
		if len(row) < 7 || row[2] != "2" || row[4] != "1" || row[6] != "1" {
			return fmt.Errorf("pools:\n%s", out)
		}
		if !strings.HasPrefix(out, "NAME") || lineOf(out, "beta") == "" {
			return fmt.Errorf("pools:\n%s", out)
		}
		return nil
	})
	if out := h.must(ns, "pools", "-o", "wide").stdout; !strings.Contains(lineOf(out, "alpha"), "of 2 warm pods Ready") {
		t.Errorf("pools -o wide:\n%s", out)
	}
	var l struct {
		Kind  string                 `json:"kind"`
		Items []v1alpha1.SandboxPool `json:"items"`
	}
	if err := json.Unmarshal([]byte(h.must(ns, "pools", "-o", "json").stdout), &l); err != nil {
		t.Fatal(err)
	}
	if l.Kind != "List" || len(l.Items) != 2 || l.Items[0].Kind != "SandboxPool" || l.Items[0].Name != "alpha" {
		t.Errorf("pools -o json: %+v", l)
	}
	if out := h.must(ns, "pools", "-o", "jsonpath={.items[*].metadata.name}").stdout; out != "alpha beta" {
		t.Errorf("pools -o jsonpath printed %q", out)
	}

	// pods: the claimed pod still carries sandbox.io/state=warm (the
	// controller takes by owner reference); pods tells it from the warm one.
	var pod corev1.Pod
	if err := h.e.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: sbc.Status.PodName}, &pod); err != nil {
		t.Fatal(err)
	}
	if pod.Labels[v1alpha1.LabelState] != v1alpha1.StateWarm {
		t.Fatalf("claimed pod %s is labelled %s=%q: this test wants a take by owner reference", pod.Name, v1alpha1.LabelState, pod.Labels[v1alpha1.LabelState])
	}
	out = h.must(ns, "pods", "alpha").stdout
	if header := strings.Join(strings.Fields(strings.SplitN(out, "\n", 2)[0]), " "); header != "NAME POOL STATE CONTROLLED BY READY STATUS NODE AGE" {
		t.Errorf("pods header %q", header)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")[1:]
	if len(rows) != 2 {
		t.Fatalf("pods alpha: %d rows, want the pool's 2 pods:\n%s", len(rows), out)
	}
	for _, l := range rows {
		row := strings.Fields(l)
		want := []string{"alpha", v1alpha1.StateWarm, "SandboxPool/alpha", "true", "Running", "node-a"}
		if row[0] == pod.Name {
			want[1], want[2] = v1alpha1.StateClaimed, "SandboxClaim/"+a
		}
		if len(row) < 7 || strings.Join(row[1:7], " ") != strings.Join(want, " ") {
			t.Errorf("pods row %q, want %q after the name", row, want)
		}
	}
	if l := lineOf(h.must(ns, "pods", "-o", "wide").stdout, pod.Name); !strings.Contains(l, "warm") || !strings.Contains(l, "ago") || !strings.Contains(l, "127.0.0.1") {
		t.Errorf("pods -o wide, row of the claimed pod %q: want its IP, origin warm and when it was claimed", l)
	}
	// Someone who may list pods but not claims still gets the pods, and
	// is told why CLAIMED is left out.
	podLister := []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pod-lister", Namespace: ns},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pod-lister", Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-lister"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "ops"}}},
	}
	for _, obj := range podLister {
		if err := h.e.Client.Create(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
	}
	res := h.must(ns, "pods", "-o", "wide", "--as", "ops")
	if l := lineOf(res.stdout, pod.Name); !strings.Contains(l, "127.0.0.1") || strings.Contains(l, "ago") || !strings.Contains(res.stderr, "CLAIMED is left out") {
		t.Errorf("pods -o wide without the right to list claims: row %q, stderr %q", l, res.stderr)
	}
	var pl struct {
		Kind  string       `json:"kind"`
		Items []corev1.Pod `json:"items"`
	}
	if err := json.Unmarshal([]byte(h.must(ns, "pods", "-o", "json").stdout), &pl); err != nil {
		t.Fatal(err)
	}
	if pl.Kind != "List" || len(pl.Items) != 2 || pl.Items[0].Kind != "Pod" || pl.Items[0].APIVersion != "v1" {
		t.Errorf("pods -o json: kind %q, %d items", pl.Kind, len(pl.Items))
	}
	if res := h.must(ns, "pods", "beta"); res.stdout != "" || !strings.Contains(res.stderr, "No pods of pool beta found in "+ns+" namespace") {
		t.Errorf("pods of a pool with none: %s", res)
	}
}

func (h *harness) testRelease(t *testing.T) {
	ns := h.e.Namespace()
	h.pool(ns, "rel", 2)
	a := h.claimText(ns, "rel")
	b := h.claimText(ns, "rel")
	res := h.must(ns, "release", a, "sandboxclaim.sandbox.io/"+b)
	if res.stdout != "sandboxclaim.sandbox.io/"+a+" released\nsandboxclaim.sandbox.io/"+b+" released\n" {
		t.Errorf("release printed %q", res.stdout)
	}
	for _, name := range []string{a, b} {
		testenv.Eventually(t, bindTimeout, "claim "+name+" deleted", func() error {
			if _, err := h.get(ns, name); err == nil {
				return errors.New("still there")
			} else if !apierrors.IsNotFound(err) {
				return fmt.Errorf("get: %w", err)
			}
			return nil
		})
		if _, err := os.Stat(filepath.Join(h.tokens, ns, name)); !os.IsNotExist(err) {
			t.Errorf("the token of released claim %s is still stored: %v", name, err)
		}
	}
	if res := h.run(ns, "", "exec", a, "--", "true"); res.code != exitFailure || !strings.Contains(res.stderr, "no token") {
		t.Errorf("exec in a released sandbox: %s", res)
	}
	if res := h.run(ns, "", "release", a); res.code != exitFailure || !strings.Contains(res.stderr, "not found") {
		t.Errorf("release of a released claim: %s", res)
	}
	if res := h.run(ns, "", "release", a, "--ignore-not-found", "-o", "name"); res.code != 0 || res.stdout != "" {
		t.Errorf("release --ignore-not-found: %s", res)
	}
}

func (h *harness) testNoSandboxFree(t *testing.T) {
	ns := h.e.Namespace()
	h.pool(ns, "empty", 0)
	res := h.run(ns, "", "claim", "empty", "--no-cold", "--timeout", bindTimeout.String())
	if res.code != exitNoSandbox || !strings.Contains(res.stderr, "no sandbox free") || res.stdout != "" {
		t.Errorf("claim --no-cold of an empty pool: %s; want exit %d", res, exitNoSandbox)
	}
	// The failed claim is deleted again, with no token left behind.
	testenv.Eventually(t, bindTimeout, "no claims left", func() error {
		var l v1alpha1.SandboxClaimList
		if err := h.e.Client.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(l.Items) != 0 {
			return fmt.Errorf("%d claims", len(l.Items))
		}
		return nil
	})
	if entries, _ := os.ReadDir(filepath.Join(h.tokens, ns)); len(entries) != 0 {
		t.Errorf("tokens stored for a claim that failed: %v", entries)
	}
}

// testColdWaiting: nothing makes cold pods Ready under envtest, so the
// claim waits; sandboxctl says for what, on stderr, and an interrupted
// claim is deleted again.
func (h *harness) testColdWaiting(t *testing.T) {
	ns := h.e.Namespace()
	h.pool(ns, "cold", 0)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr testenv.SyncBuffer
	done := make(chan result, 1)
	go func() {
		done <- h.runContext(ctx, ns, "", &stderr, "claim", "cold", "--timeout", "10m")
	}()
	testenv.Eventually(t, bindTimeout, "the claim's waiting message", func() error {
		if s := stderr.String(); !strings.Contains(s, "waiting for claim cold-") || !strings.Contains(s, "no warm pod of pool cold was free") {
			return fmt.Errorf("stderr %q", s)
		}
		return nil
	})
	cancel()
	select {
	case res := <-done:
		if res.code == 0 {
			t.Errorf("an interrupted claim exited 0: %s", res)
		}
	case <-time.After(bindTimeout):
		t.Fatal("the interrupted claim did not return")
	}
	t.Logf("stderr of the cold claim:\n%s", stderr.String())
	testenv.Eventually(t, bindTimeout, "the interrupted claim deleted", func() error {
		var l v1alpha1.SandboxClaimList
		if err := h.e.Client.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(l.Items) != 0 {
			return fmt.Errorf("%d claims", len(l.Items))
		}
		return nil
	})
}

func (h *harness) testCompletion(t *testing.T) {
	ns := h.e.Namespace()
	h.pool(ns, "comp-a", 1)
	h.pool(ns, "comp-b", 0)
	name := h.claimText(ns, "comp-a")

	tests := []struct {
		args  []string
		want  []string
		unwnt []string
	}{
		{args: []string{"__complete", "claim", ""}, want: []string{"comp-a", "comp-b", ":4"}},
		{args: []string{"__complete", "claim", "comp-b"}, want: []string{"comp-b", ":4"}, unwnt: []string{"comp-a"}},
		{args: []string{"__complete", "exec", ""}, want: []string{name, ":4"}},
		{args: []string{"__complete", "exec", "sbc/"}, want: []string{"sbc/" + name, ":4"}},
		{args: []string{"__complete", "release", name, ""}, want: []string{":4"}, unwnt: []string{name + "\n"}},
		{args: []string{"__complete", "cp", "./local", ""}, want: []string{name + ":", ":2"}},
		{args: []string{"__complete", "list", "-o", ""}, want: []string{"wide", "json", "yaml", "name", "jsonpath", "custom-columns"}},
		{args: []string{"__complete", "--context", ""}, want: []string{"envtest"}},
	}
	for _, tc := range tests {
		res := h.must(ns, tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(res.stdout, w) {
				t.Errorf("sandboxctl %q printed %q, want %q in it", tc.args, res.stdout, w)
			}
		}
		for _, u := range tc.unwnt {
			if strings.Contains(res.stdout, u) {
				t.Errorf("sandboxctl %q printed %q, want no %q", tc.args, res.stdout, u)
			}
		}
	}
}
