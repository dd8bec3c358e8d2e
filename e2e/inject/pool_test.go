package inject

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/pool"
)

// installPoolAgent installs the chart with the node agent and its warm
// pools (on by default), pointed at the cluster's containerd.
func (x *env) installPoolAgent(t *testing.T, extra ...string) {
	t.Helper()
	// The tree's agents know a pod taken by the owner reference alone
	// (pool.State): claims change no pod label here.
	x.installAgent(t, append([]string{"--set", "agent.logLevel=debug",
		"--set", "agent.pools.enabled=true", "--set", "agent.pools.maxCreates=2",
		"--set", "runner.injectionMethod=auto", "--set", "claims.relabelOnTake=false"}, extra...)...)
}

// poolClient is a controller-runtime client that knows SandboxPools.
func (x *env) poolClient(t *testing.T) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(x.rest, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitWarmReady waits until the pool has exactly n warm pods, each Ready,
// not being deleted, of the pool's current template and injected with
// method ("" for any), and returns them.
func (x *env) waitWarmReady(t *testing.T, p *v1alpha1.SandboxPool, n int, method string) []corev1.Pod {
	t.Helper()
	var warm []corev1.Pod
	testenv.Eventually(t, 3*time.Minute, fmt.Sprintf("%d Ready warm pods of %s/%s", n, p.Namespace, p.Name), func() error {
		list, err := x.kube.CoreV1().Pods(p.Namespace).List(t.Context(), metav1.ListOptions{LabelSelector: pool.MadeWarmSelector(p.Name).String()})
		if err != nil {
			return err
		}
		warm = warm[:0]
		for _, pod := range list.Items {
			if pod.DeletionTimestamp != nil || pool.State(&pod) != v1alpha1.StateWarm {
				continue // gone, or claimed since it was made warm
			}
			if !isReady(&pod) {
				return fmt.Errorf("warm pod %s not Ready: %s", pod.Name, describe(&pod))
			}
			if got := methodOf(&pod); method != "" && got != method {
				return fmt.Errorf("warm pod %s injected with method %q, want %q", pod.Name, got, method)
			}
			warm = append(warm, pod)
		}
		if len(warm) != n {
			return fmt.Errorf("%d warm pods", len(warm))
		}
		return nil
	})
	return warm
}

func names(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

// agentMetrics reads the agent pod's Prometheus metrics through the API
// server's pod proxy.
func (x *env) agentMetrics(ctx context.Context, pod string) (string, error) {
	raw, err := x.kube.CoreV1().Pods(releaseNS).ProxyGet("http", pod, "8080", "/metrics", nil).DoRaw(ctx)
	return string(raw), err
}

// agentPodReady waits for the single agent pod to be Ready and returns it;
// not is a pod name it must not be (the one just deleted).
func (x *env) agentPodReady(t *testing.T, not string) corev1.Pod {
	t.Helper()
	var got corev1.Pod
	testenv.Eventually(t, 2*time.Minute, "the agent pod Ready", func() error {
		pods, err := x.kube.CoreV1().Pods(releaseNS).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=agent"})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if p.Name != not && p.DeletionTimestamp == nil && isReady(&p) {
				got = p
				return nil
			}
		}
		return fmt.Errorf("%d agent pods, none Ready and new", len(pods.Items))
	})
	return got
}

// TestWarmPool installs the node agent with warm pools and keeps a pool of
// 3 busybox sandboxes at 3 Ready warm pods through claims, a deletion and an
// agent restart; kubectl shows the totals. The node is labelled as
// supporting image volumes and injection is auto, so the warm pods mount
// the runner from an image volume (issue #8). The agent's creates pass the
// chart's policy that keeps it to its own node, which proves the API server
// gives its bound token's node name to admission.
func TestWarmPool(t *testing.T) {
	x := requireE2E(t)
	t.Cleanup(func() {
		if err := x.install(); err != nil {
			t.Errorf("going back to the chart without the agent: %v", err)
		}
		x.labelNodes(context.Background(), t, "")
	})
	x.installPoolAgent(t)
	agentPod := x.agentPodReady(t, "")
	// The policy that keeps the agent to its own node's pool pods is in
	// force: every warm pod below passed it, so the API server gave the
	// agent's bound token's node name to admission.
	policy := release + "-agent-pools"
	if _, err := x.kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(t.Context(), policy, metav1.GetOptions{}); err != nil {
		t.Fatalf("the agent pod policy: %v", err)
	}
	if _, err := x.kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(t.Context(), policy, metav1.GetOptions{}); err != nil {
		t.Fatalf("the agent pod policy binding: %v", err)
	}
	x.labelNodes(t.Context(), t, "true") // the agent sets it too; this waits until the webhook has seen it
	ns := x.namespace(t, "pool", nil)
	p := x.createPool(t, ns, "busybox", 3)
	c := x.poolClient(t)

	warm := x.waitWarmReady(t, p, 3, v1alpha1.MethodImageVolume)
	node := x.soleNode(t)
	for _, pod := range warm {
		if pod.Spec.NodeName != node || metav1.GetControllerOf(&pod) == nil || metav1.GetControllerOf(&pod).UID != p.UID {
			t.Errorf("warm pod %s: node %q, controller %+v", pod.Name, pod.Spec.NodeName, metav1.GetControllerOf(&pod))
		}
	}
	totals := func(what string, desired, ready, claimed int32) {
		t.Helper()
		testenv.Eventually(t, time.Minute, what, func() error {
			var got v1alpha1.SandboxPool
			if err := c.Get(t.Context(), client.ObjectKeyFromObject(p), &got); err != nil {
				return err
			}
			// The claim controller (in the webhook) writes the totals.
			if got.Status.Desired != desired || got.Status.Ready != ready || got.Status.Claimed != claimed ||
				got.Status.Warm != desired || got.Status.ObservedGeneration != got.Generation {
				return fmt.Errorf("status %+v", got.Status)
			}
			return nil
		})
	}
	totals("status 3/3", 3, 3, 0)

	// Two claims (sandboxctl, the real claim protocol): the agent refills,
	// and leaves the claimed pods alone.
	var claimed, claims []string
	for range 2 {
		out := x.mustSandboxctl(t, "claim", "busybox", "-n", ns, "--no-cold")
		claimed = append(claimed, field(out, "pod"))
		claims = append(claims, field(out, "claim"))
	}
	refilled := x.waitWarmReady(t, p, 3, v1alpha1.MethodImageVolume)
	for _, name := range claimed {
		if slices.Contains(names(refilled), name) {
			t.Errorf("claimed pod %s is counted warm", name)
		}
		got, err := x.kube.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil || got.DeletionTimestamp != nil || pool.State(got) != v1alpha1.StateClaimed {
			t.Errorf("claimed pod %s touched by the agent: %v", name, err)
		}
	}
	totals("status 3/3 with 2 claimed", 3, 3, 2)

	// A deleted warm pod is replaced.
	victim := refilled[0].Name
	if err := x.kube.CoreV1().Pods(ns).Delete(t.Context(), victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	afterDelete := x.waitWarmReady(t, p, 3, v1alpha1.MethodImageVolume)
	if slices.Contains(names(afterDelete), victim) {
		t.Errorf("the deleted pod %s is still warm", victim)
	}
	totals("status 3/3 after a deletion", 3, 3, 2)

	// An agent restart: the new agent rebuilds its view from the API and
	// creates nothing (its metrics show it reconciled the pool).
	if err := x.kube.CoreV1().Pods(releaseNS).Delete(t.Context(), agentPod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	newAgent := x.agentPodReady(t, agentPod.Name)
	gauge := fmt.Sprintf(`sandbox_agent_pool_pods{namespace=%q,node=%q,pool="busybox",state="ready"} 3`, ns, node)
	var metrics string
	testenv.Eventually(t, time.Minute, "the new agent reconciled the pool", func() error {
		m, err := x.agentMetrics(t.Context(), newAgent.Name)
		if err != nil {
			return err
		}
		metrics = m
		if !strings.Contains(m, gauge) {
			return fmt.Errorf("no %s in the agent's metrics", gauge)
		}
		return nil
	})
	if created := fmt.Sprintf(`sandbox_agent_pool_pods_created_total{namespace=%q,pool="busybox"}`, ns); strings.Contains(metrics, created) {
		t.Errorf("the restarted agent created pods:\n%s", grepLines(metrics, created))
	}
	afterRestart := x.waitWarmReady(t, p, 3, v1alpha1.MethodImageVolume)
	if !slices.Equal(names(afterRestart), names(afterDelete)) {
		t.Errorf("warm pods %v after the restart, want the same %v", names(afterRestart), names(afterDelete))
	}

	// kubectl shows the totals.
	out, err := exec.CommandContext(t.Context(), filepath.Join(x.root, "bin", "kubectl"), "get", "sandboxpools", "-n", ns, "-o", "wide").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get sandboxpools: %v\n%s", err, out)
	}
	t.Logf("kubectl get sandboxpools -o wide:\n%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "DESIRED") || !strings.Contains(lines[0], "READY") {
		t.Fatalf("kubectl output %q", out)
	}
	// Columns are aligned under their headers ("PER NODE" has a space).
	at := func(name string) string {
		i := strings.Index(lines[0], name)
		if i < 0 || i >= len(lines[1]) {
			return ""
		}
		f := strings.Fields(lines[1][i:])
		if len(f) == 0 {
			return ""
		}
		return f[0]
	}
	if at("DESIRED") != "3" || at("READY") != "3" {
		t.Errorf("kubectl shows desired %q ready %q, want 3 and 3", at("DESIRED"), at("READY"))
	}

	// Releasing the claims deletes the claimed pods (each claim is its
	// pod's only owner); deleting the pool deletes its warm pods, and the
	// agent creates no more.
	for _, name := range claims {
		x.mustSandboxctl(t, "release", "-n", ns, name)
	}
	if err := c.Delete(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, "the pool's pods gone", func() error {
		list, err := x.kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: pool.Selector(p.Name).String()})
		if err != nil {
			return err
		}
		if len(list.Items) != 0 {
			return fmt.Errorf("%d pods of the deleted pool remain", len(list.Items))
		}
		return nil
	})
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
