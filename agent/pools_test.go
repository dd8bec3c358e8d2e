package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/pool"
)

// poolEnv is a real API server with the SandboxPool CRD; pods never run
// there, so the tests set their status themselves.
type poolEnv struct {
	cfg *rest.Config
	c   client.Client
}

// testLog is where the agents under test log: stderr, at the level of
// SANDBOX_TEST_LOG (warn unless set to debug or info).
var testLog = sync.OnceValue(func() *slog.Logger {
	level := slog.LevelWarn
	_ = level.UnmarshalText([]byte(os.Getenv("SANDBOX_TEST_LOG")))
	l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctrl.SetLogger(logr.FromSlogHandler(l.Handler()))
	return l
})

func startPoolEnv(t *testing.T) *poolEnv {
	t.Helper()
	testLog()
	cfg, c := testenv.StartWithCRDs(t)
	return &poolEnv{cfg: cfg, c: c}
}

// agentRun is one running agent (its manager) for one node.
type agentRun struct {
	metrics *PoolMetrics
	stop    func()
}

// startAgent runs a pool reconciler for node until stop is called or the
// test ends.
func (x *poolEnv) startAgent(t *testing.T, node string, maxStarting int, opts ...func(*PoolConfig)) *agentRun {
	t.Helper()
	mgr, err := manager.New(x.cfg, manager.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	m := NewPoolMetrics()
	cfg := PoolConfig{NodeName: node, MaxStarting: maxStarting, Metrics: m, ShortRetry: time.Second, Log: testLog()}
	for _, o := range opts {
		o(&cfg)
	}
	if _, err := SetupPools(mgr, cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("agent of %s: %v", node, err)
			}
		})
	}
	t.Cleanup(stop)
	return &agentRun{metrics: m, stop: stop}
}

func (x *poolEnv) node(t *testing.T, name string, labels map[string]string, taints ...corev1.Taint) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := x.c.Create(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	// The API server taints a new node not-ready (TaintNodesByCondition);
	// with no node controller here, the test makes it ready.
	n.Spec.Taints = taints
	if err := x.c.Update(t.Context(), n); err != nil {
		t.Fatal(err)
	}
}

// namespace creates a namespace with its default ServiceAccount (no
// controller-manager here creates it).
func (x *poolEnv) namespace(t *testing.T, name string) {
	t.Helper()
	if err := x.c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	if err := x.c.Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}}); err != nil {
		t.Fatal(err)
	}
}

func (x *poolEnv) pool(t *testing.T, ns, name string, perNode int32, mutate ...func(*v1alpha1.SandboxPool)) *v1alpha1.SandboxPool {
	t.Helper()
	p := &v1alpha1.SandboxPool{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1alpha1.SandboxPoolSpec{Template: v1alpha1.SandboxTemplate{Image: "images.test/python:3"}, PodsPerNode: ptr.To(perNode)},
	}
	for _, m := range mutate {
		m(p)
	}
	if err := x.c.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// pods lists the live (not being deleted) pods of a pool on node, by state.
func (x *poolEnv) pods(t *testing.T, ns, poolName, node, state string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	if err := x.c.List(t.Context(), &list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: pool.Selector(poolName)}); err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Spec.NodeName == node && pool.State(&p) == state {
			out = append(out, p)
		}
	}
	return out
}

// waitWarm waits until node has exactly n live warm pods of the pool, all
// made from the pool's current template, and returns them.
func (x *poolEnv) waitWarm(t *testing.T, ns, poolName, node string, n int) []corev1.Pod {
	t.Helper()
	var got []corev1.Pod
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%d warm pods of %s/%s on %s", n, ns, poolName, node), func() error {
		var p v1alpha1.SandboxPool
		if err := x.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: poolName}, &p); err != nil {
			return err
		}
		got = x.pods(t, ns, poolName, node, v1alpha1.StateWarm)
		if len(got) != n {
			return fmt.Errorf("%d warm pods", len(got))
		}
		for _, pod := range got {
			if pod.Labels[v1alpha1.LabelTemplateHash] != pool.TemplateHash(&p) {
				return fmt.Errorf("pod %s has template hash %s, pool %s", pod.Name, pod.Labels[v1alpha1.LabelTemplateHash], pool.TemplateHash(&p))
			}
		}
		return nil
	})
	return got
}

// markReady sets pods Running and Ready with an IP, as the kubelet would.
func (x *poolEnv) markReady(t *testing.T, pods []corev1.Pod) {
	t.Helper()
	for i := range pods {
		x.setStatus(t, &pods[i], func(s *corev1.PodStatus) {
			s.Phase = corev1.PodRunning
			s.PodIP = fmt.Sprintf("10.0.0.%d", i+1)
			s.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		})
	}
}

func (x *poolEnv) setStatus(t *testing.T, pod *corev1.Pod, f func(*corev1.PodStatus)) {
	t.Helper()
	for {
		var fresh corev1.Pod
		if err := x.c.Get(t.Context(), client.ObjectKeyFromObject(pod), &fresh); err != nil {
			t.Fatal(err)
		}
		f(&fresh.Status)
		err := x.c.Status().Update(t.Context(), &fresh)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
}

// claim makes a warm pod claimed, as the claim controller does: one update
// conditioned on the resourceVersion read that makes a SandboxClaim its
// controller (no label changes).
func (x *poolEnv) claim(t *testing.T, pod corev1.Pod) {
	t.Helper()
	for {
		var fresh corev1.Pod
		if err := x.c.Get(t.Context(), client.ObjectKeyFromObject(&pod), &fresh); err != nil {
			t.Fatal(err)
		}
		fresh.OwnerReferences = []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "SandboxClaim", Name: "c-" + fresh.Name, UID: types.UID("claim-" + fresh.UID), Controller: ptr.To(true)}}
		err := x.c.Update(t.Context(), &fresh)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
}

// waitCounts waits until the agent's gauges of the pool on node say
// desired, warm, ready and claimed, for the pool's current generation: the
// agent's per-node view (it writes no pool status).
func (x *poolEnv) waitCounts(t *testing.T, a *agentRun, ns, poolName, node string, desired, warm, ready, claimed int) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%s/%s on %s: desired %d warm %d ready %d claimed %d", ns, poolName, node, desired, warm, ready, claimed), func() error {
		var p v1alpha1.SandboxPool
		if err := x.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: poolName}, &p); err != nil {
			return err
		}
		got := [4]float64{gauge(a.metrics, ns, poolName, node, "desired"), gauge(a.metrics, ns, poolName, node, "warm"),
			gauge(a.metrics, ns, poolName, node, "ready"), gauge(a.metrics, ns, poolName, node, "claimed")}
		if want := [4]float64{float64(desired), float64(warm), float64(ready), float64(claimed)}; got != want {
			return fmt.Errorf("gauges desired, warm, ready, claimed %v", got)
		}
		if g := observedGeneration(a.metrics, ns, poolName, node); g != float64(p.Generation) {
			return fmt.Errorf("observed generation %v, pool at %d", g, p.Generation)
		}
		return nil
	})
}

func observedGeneration(m *PoolMetrics, ns, poolName, node string) float64 {
	return testutil.ToFloat64(m.ObservedGeneration.WithLabelValues(ns, poolName, node))
}

func gauge(m *PoolMetrics, ns, poolName, node, state string) float64 {
	return testutil.ToFloat64(m.Pods.WithLabelValues(ns, poolName, node, state))
}

// TestWarmPools runs the reconciler against a real API server: one per
// subtest's node, in its own namespace.
func TestWarmPools(t *testing.T) {
	x := startPoolEnv(t)

	t.Run("kept at size through deletion, failure, claim, template change and restart", func(t *testing.T) {
		const ns, node = "keep", "node-keep"
		x.namespace(t, ns)
		x.node(t, node, nil)
		a := x.startAgent(t, node, 5)
		p := x.pool(t, ns, "py", 3)

		pods := x.waitWarm(t, ns, "py", node, 3)
		for _, pod := range pods {
			if ref := metav1.GetControllerOf(&pod); ref == nil || ref.UID != p.UID || ref.Kind != "SandboxPool" {
				t.Errorf("pod %s: controller %+v, want the pool (so deleting the pool deletes it)", pod.Name, ref)
			}
		}
		x.markReady(t, pods)
		x.waitCounts(t, a, ns, "py", node, 3, 3, 3, 0)

		// A deleted pod is replaced.
		if err := x.c.Delete(t.Context(), &pods[0], client.GracePeriodSeconds(0)); err != nil {
			t.Fatal(err)
		}
		pods = x.waitWarm(t, ns, "py", node, 3)
		x.markReady(t, pods)

		// A failed pod is deleted and replaced.
		failed := pods[1]
		x.setStatus(t, &failed, func(s *corev1.PodStatus) { s.Phase = corev1.PodFailed; s.Conditions = nil })
		testenv.Eventually(t, 30*time.Second, "the failed pod deleted", func() error {
			var got corev1.Pod
			err := x.c.Get(t.Context(), client.ObjectKeyFromObject(&failed), &got)
			if apierrors.IsNotFound(err) || err == nil && got.DeletionTimestamp != nil {
				return nil
			}
			if err != nil {
				return fmt.Errorf("reading the failed pod: %w", err)
			}
			return errors.New("still there")
		})
		pods = x.waitWarm(t, ns, "py", node, 3)
		x.markReady(t, pods)
		if got := testutil.ToFloat64(a.metrics.Deleted.WithLabelValues(ns, "py", DeleteFailed)); got != 1 {
			t.Errorf("deleted{reason=failed} = %v, want 1", got)
		}

		// A claimed pod is left alone and the pool refilled.
		target := pods[2]
		x.claim(t, target)
		pods = x.waitWarm(t, ns, "py", node, 3)
		x.markReady(t, pods)
		x.waitCounts(t, a, ns, "py", node, 3, 3, 3, 1)
		claimedPods := x.pods(t, ns, "py", node, v1alpha1.StateClaimed)
		if len(claimedPods) != 1 || claimedPods[0].UID != target.UID {
			t.Fatalf("claimed pods %d, want the one claimed", len(claimedPods))
		}
		claimedPod := claimedPods[0]

		// A template change replaces the warm pods, not the claimed one.
		var fresh v1alpha1.SandboxPool
		if err := x.c.Get(t.Context(), client.ObjectKeyFromObject(p), &fresh); err != nil {
			t.Fatal(err)
		}
		oldHash := pool.TemplateHash(&fresh)
		fresh.Spec.Template.Image = "images.test/python:3.14"
		if err := x.c.Update(t.Context(), &fresh); err != nil {
			t.Fatal(err)
		}
		pods = x.waitWarm(t, ns, "py", node, 3) // all of the new hash
		for _, pod := range pods {
			if pod.Spec.Containers[0].Image != "images.test/python:3.14" {
				t.Errorf("pod %s runs %s after the template change", pod.Name, pod.Spec.Containers[0].Image)
			}
		}
		x.markReady(t, pods)
		x.waitCounts(t, a, ns, "py", node, 3, 3, 3, 1) // of the new generation
		var stillClaimed corev1.Pod
		if err := x.c.Get(t.Context(), client.ObjectKeyFromObject(&claimedPod), &stillClaimed); err != nil || stillClaimed.DeletionTimestamp != nil {
			t.Errorf("the claimed pod was touched by the template change: %v %v", err, stillClaimed.DeletionTimestamp)
		}
		if stillClaimed.Labels[v1alpha1.LabelTemplateHash] != oldHash {
			t.Errorf("claimed pod hash %s, want the old %s", stillClaimed.Labels[v1alpha1.LabelTemplateHash], oldHash)
		}
		if got := testutil.ToFloat64(a.metrics.Deleted.WithLabelValues(ns, "py", DeleteStale)); got != 3 {
			t.Errorf("deleted{reason=stale} = %v, want 3", got)
		}

		// A restarted agent rebuilds its view from the API and creates
		// nothing: once it has reconciled the pool (its gauges are set),
		// still the same three warm pods.
		before := map[string]bool{}
		for _, pod := range pods {
			before[pod.Name] = true
		}
		a.stop()
		b := x.startAgent(t, node, 5)
		testenv.Eventually(t, 30*time.Second, "the restarted agent reconciled", func() error {
			if gauge(b.metrics, ns, "py", node, "ready") != 3 || gauge(b.metrics, ns, "py", node, "claimed") != 1 {
				return errors.New("not yet")
			}
			return nil
		})
		after := x.pods(t, ns, "py", node, v1alpha1.StateWarm)
		if len(after) != 3 {
			t.Errorf("%d warm pods after the restart, want 3", len(after))
		}
		for _, pod := range after {
			if !before[pod.Name] {
				t.Errorf("the restarted agent created %s", pod.Name)
			}
		}
		if got := testutil.ToFloat64(b.metrics.Created.WithLabelValues(ns, "py")); got != 0 {
			t.Errorf("the restarted agent created %v pods, want 0", got)
		}
	})

	t.Run("a claimed pod is replaced after RefillDelay, with those taken meanwhile", func(t *testing.T) {
		const ns, node = "refill", "node-refill"
		const delay = 3 * time.Second
		x.namespace(t, ns)
		x.node(t, node, nil)
		a := x.startAgent(t, node, 5, func(c *PoolConfig) { c.RefillDelay = delay })
		x.pool(t, ns, "py", 3)
		pods := x.waitWarm(t, ns, "py", node, 3)
		x.markReady(t, pods)
		x.waitCounts(t, a, ns, "py", node, 3, 3, 3, 0)
		created := testutil.ToFloat64(a.metrics.Created.WithLabelValues(ns, "py"))

		x.claim(t, pods[0])
		took := time.Now()
		x.claim(t, pods[1])
		testenv.Eventually(t, 30*time.Second, "the agent saw both takes", func() error {
			if got := gauge(a.metrics, ns, "py", node, "claimed"); got != 2 {
				return fmt.Errorf("claimed gauge %v", got)
			}
			return nil
		})
		// Not refilled while the delay runs (the check cannot pass early:
		// a slow agent only creates later).
		if wait := delay - time.Since(took) - 500*time.Millisecond; wait > 0 {
			time.Sleep(wait)
			if warm := x.pods(t, ns, "py", node, v1alpha1.StateWarm); len(warm) != 1 {
				t.Fatalf("%d warm pods %s after the first take, want 1: the refill did not wait %s", len(warm), time.Since(took).Round(time.Millisecond), delay)
			}
		} else {
			t.Logf("the takes took %s, too long to see the refill held", time.Since(took))
		}
		pods = x.waitWarm(t, ns, "py", node, 3)
		x.markReady(t, pods)
		x.waitCounts(t, a, ns, "py", node, 3, 3, 3, 2)
		if got := testutil.ToFloat64(a.metrics.Created.WithLabelValues(ns, "py")) - created; got != 2 {
			t.Errorf("created %v pods for two takes, want 2", got)
		}
	})

	t.Run("refills in batches of MaxStarting", func(t *testing.T) {
		const ns, node = "batch", "node-batch"
		x.namespace(t, ns)
		x.node(t, node, nil)
		a := x.startAgent(t, node, 2)
		x.pool(t, ns, "big", 5)
		// Two are created; the rest wait until those are Ready.
		pods := x.waitWarm(t, ns, "big", node, 2)
		x.waitCounts(t, a, ns, "big", node, 5, 2, 0, 0)
		if n := len(x.pods(t, ns, "big", node, v1alpha1.StateWarm)); n != 2 {
			t.Fatalf("%d warm pods while two are starting, want 2", n)
		}
		x.markReady(t, pods)
		pods = x.waitWarm(t, ns, "big", node, 4)
		x.markReady(t, pods)
		pods = x.waitWarm(t, ns, "big", node, 5)
		x.markReady(t, pods)
		x.waitCounts(t, a, ns, "big", node, 5, 5, 5, 0)
		if got := testutil.ToFloat64(a.metrics.Created.WithLabelValues(ns, "big")); got != 5 {
			t.Errorf("created %v pods, want 5", got)
		}
	})

	t.Run("a warm pod never Ready is replaced after StuckAfter", func(t *testing.T) {
		const ns, node = "stuck", "node-stuck"
		x.namespace(t, ns)
		x.node(t, node, nil)
		a := x.startAgent(t, node, 1, func(c *PoolConfig) { c.StuckAfter = 2 * time.Second })
		x.pool(t, ns, "crashy", 1)
		first := x.waitWarm(t, ns, "crashy", node, 1)[0]
		// Never marked Ready: after StuckAfter it is deleted and replaced,
		// though no event about it arrives (the requeue looks again).
		var second corev1.Pod
		testenv.Eventually(t, 30*time.Second, "the stuck pod replaced", func() error {
			warm := x.pods(t, ns, "crashy", node, v1alpha1.StateWarm)
			if len(warm) != 1 || warm[0].Name == first.Name {
				return fmt.Errorf("%d warm pods, first %s still there", len(warm), first.Name)
			}
			second = warm[0]
			return nil
		})
		if got := testutil.ToFloat64(a.metrics.Deleted.WithLabelValues(ns, "crashy", DeleteStuck)); got < 1 {
			t.Errorf("deleted %v stuck pods, want at least 1", got)
		}
		// A Ready pod is kept, however long it lives.
		x.markReady(t, []corev1.Pod{second})
		time.Sleep(3 * time.Second)
		if warm := x.pods(t, ns, "crashy", node, v1alpha1.StateWarm); len(warm) != 1 || warm[0].Name != second.Name {
			t.Errorf("after the replacement turned Ready: warm pods %v, want only %s", podNames(warm), second.Name)
		}
	})

	t.Run("two agents keep their own nodes and write no pool status", func(t *testing.T) {
		const ns = "two"
		x.namespace(t, ns)
		x.node(t, "node-b", nil)
		x.node(t, "node-c", nil)
		b := x.startAgent(t, "node-b", 5)
		c := x.startAgent(t, "node-c", 5)
		x.pool(t, ns, "js", 2)
		x.markReady(t, x.waitWarm(t, ns, "js", "node-b", 2))
		x.markReady(t, x.waitWarm(t, ns, "js", "node-c", 2)[:1])
		x.waitCounts(t, b, ns, "js", "node-b", 2, 2, 2, 0)
		x.waitCounts(t, c, ns, "js", "node-c", 2, 2, 1, 0)
		// Each agent's gauges hold its own node only.
		for _, tc := range []struct {
			a    *agentRun
			self string
		}{{b, "node-b"}, {c, "node-c"}} {
			for _, l := range podsLabels(t, tc.a.metrics) {
				if l["node"] != tc.self {
					t.Errorf("the agent of %s reports %v", tc.self, l)
				}
			}
		}
		// The pool's status is the claim controller's: no agent wrote it.
		var p v1alpha1.SandboxPool
		if err := x.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "js"}, &p); err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(p.Status, v1alpha1.SandboxPoolStatus{}) {
			t.Errorf("pool status %+v written with no controller running", p.Status)
		}
		for _, mf := range p.ManagedFields {
			if mf.Subresource == "status" {
				t.Errorf("status written by %s (%s)", mf.Manager, mf.Operation)
			}
		}
	})

	t.Run("a pool status write wakes no agent, a spec change does", func(t *testing.T) {
		const ns, node = "quiet", "node-quiet"
		x.namespace(t, ns)
		x.node(t, node, map[string]string{"zone": "a"})
		// Nothing but events wakes this agent: no retry or stuck timers.
		a := x.startAgent(t, node, 5, func(c *PoolConfig) { c.StuckAfter, c.ShortRetry = -1, time.Hour })
		p := x.pool(t, ns, "py", 1)
		x.markReady(t, x.waitWarm(t, ns, "py", node, 1))
		x.waitCounts(t, a, ns, "py", node, 1, 1, 1, 0)
		reconciles := func() float64 { return testutil.ToFloat64(a.metrics.Reconciles.WithLabelValues(ns, "py")) }
		// specChange changes the node selector (the node still matches, so
		// no pod changes) and waits until the agent acted on it: a barrier
		// behind every event the pool's watch delivered before it.
		selectors := []map[string]string{{"zone": "a"}, nil}
		round := 0
		specChange := func() {
			t.Helper()
			var fresh v1alpha1.SandboxPool
			if err := x.c.Get(t.Context(), client.ObjectKeyFromObject(p), &fresh); err != nil {
				t.Fatal(err)
			}
			fresh.Spec.NodeSelector = selectors[round%2]
			round++
			if err := x.c.Update(t.Context(), &fresh); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 30*time.Second, "the agent acted on generation "+fmt.Sprint(fresh.Generation), func() error {
				if g := observedGeneration(a.metrics, ns, "py", node); g != float64(fresh.Generation) {
					return fmt.Errorf("observed generation %v", g)
				}
				return nil
			})
		}
		specChange() // settles anything the pods' events still had queued
		before := reconciles()
		const rounds = 3
		for i := range rounds {
			// What the claim controller writes: the totals and a condition.
			var fresh v1alpha1.SandboxPool
			if err := x.c.Get(t.Context(), client.ObjectKeyFromObject(p), &fresh); err != nil {
				t.Fatal(err)
			}
			fresh.Status = v1alpha1.SandboxPoolStatus{Desired: 1, Ready: int32(i % 2), Warm: 1, ObservedGeneration: fresh.Generation}
			meta.SetStatusCondition(&fresh.Status.Conditions, metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse,
				Reason: "Filling", Message: fmt.Sprintf("round %d", i), ObservedGeneration: fresh.Generation})
			if err := x.c.Status().Update(t.Context(), &fresh); err != nil {
				t.Fatal(err)
			}
			specChange()
		}
		if got := reconciles() - before; got != rounds {
			t.Errorf("%v reconciles after %d status writes and %d spec changes, want %d (one per spec change)", got, rounds, rounds, rounds)
		}
		x.waitCounts(t, a, ns, "py", node, 1, 1, 1, 0)
	})

	t.Run("a template the API server refuses is a Warning event on the pool", func(t *testing.T) {
		const ns, node = "refused", "node-refused"
		x.namespace(t, ns)
		x.node(t, node, nil)
		a := x.startAgent(t, node, 5)
		x.pool(t, ns, "bad", 2, func(p *v1alpha1.SandboxPool) {
			p.Spec.Template.Env = []corev1.EnvVar{{Name: "not a=valid name", Value: "x"}}
		})
		var events corev1.EventList
		testenv.Eventually(t, 30*time.Second, "a CreateFailed event on the pool", func() error {
			if err := x.c.List(t.Context(), &events, client.InNamespace(ns)); err != nil {
				return err
			}
			for _, e := range events.Items {
				if e.InvolvedObject.Kind == "SandboxPool" && e.InvolvedObject.Name == "bad" && e.Reason == ReasonCreateFailed &&
					e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "node "+node) && strings.Contains(e.Message, "not a=valid name") {
					return nil
				}
			}
			return fmt.Errorf("events %+v", events.Items)
		})
		x.waitCounts(t, a, ns, "bad", node, 2, 0, 0, 0)
		if got := testutil.ToFloat64(a.metrics.Errors.WithLabelValues("create")); got < 2 {
			t.Errorf("errors{op=create} = %v, want at least 2", got)
		}
		// Retries (with backoff) record no second event within a minute.
		testenv.Eventually(t, 30*time.Second, "a retry", func() error {
			if testutil.ToFloat64(a.metrics.Errors.WithLabelValues("create")) < 4 {
				return errors.New("no retry yet")
			}
			return nil
		})
		if err := x.c.List(t.Context(), &events, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		if n := len(events.Items); n != 1 {
			t.Errorf("%d events after a retry, want 1", n)
		}
	})

	t.Run("a node the pool does not select gets no pods", func(t *testing.T) {
		const ns, node = "select", "node-select"
		x.namespace(t, ns)
		x.node(t, node, map[string]string{"zone": "b"})
		a := x.startAgent(t, node, 5)
		x.pool(t, ns, "gpu", 2, func(p *v1alpha1.SandboxPool) { p.Spec.NodeSelector = map[string]string{"zone": "a"} })
		x.pool(t, ns, "cpu", 1) // reconciled too: proves the agent is running
		x.waitWarm(t, ns, "cpu", node, 1)
		testenv.Eventually(t, 30*time.Second, "the gpu pool reconciled", func() error {
			if gauge(a.metrics, ns, "gpu", node, "desired") != 0 || testutil.CollectAndCount(a.metrics.Pods) < 8 {
				return errors.New("not yet")
			}
			return nil
		})
		if n := len(x.pods(t, ns, "gpu", node, v1alpha1.StateWarm)); n != 0 {
			t.Errorf("%d warm pods of a pool whose node selector does not match", n)
		}
		// The node is labelled: the agent sees its node change and fills.
		var n corev1.Node
		if err := x.c.Get(t.Context(), client.ObjectKey{Name: node}, &n); err != nil {
			t.Fatal(err)
		}
		n.Labels["zone"] = "a"
		if err := x.c.Update(t.Context(), &n); err != nil {
			t.Fatal(err)
		}
		x.waitWarm(t, ns, "gpu", node, 2)
		// And unlabelled: its warm pods go.
		if err := x.c.Get(t.Context(), client.ObjectKey{Name: node}, &n); err != nil {
			t.Fatal(err)
		}
		n.Labels["zone"] = "c"
		if err := x.c.Update(t.Context(), &n); err != nil {
			t.Fatal(err)
		}
		x.waitWarm(t, ns, "gpu", node, 0)
		x.waitCounts(t, a, ns, "gpu", node, 0, 0, 0, 0)
	})
}

// TestExpectations: creations count until the cache shows them, deletions
// until the cache shows them gone or being deleted, and neither outlives
// expectTimeout.
func TestExpectations(t *testing.T) {
	t.Parallel()
	var e expectations
	key := client.ObjectKey{Namespace: "ns", Name: "py"}
	now := epoch
	e.created(key, "a", now)
	e.created(key, "b", now)
	e.deleted(key, "old", now)
	e.deleted(key, "older", now)
	alive := func(names ...string) []corev1.Pod {
		var out []corev1.Pod
		for _, n := range names {
			out = append(out, corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: n}})
		}
		return out
	}
	if n, del := e.observe(key, alive("old", "older"), now); n != 2 || len(del) != 2 {
		t.Errorf("before the cache shows anything: %d unobserved, deleted %v; want 2 and 2", n, del)
	}
	gone := alive("a", "older")
	ts := metav1.NewTime(now)
	gone[1].DeletionTimestamp = &ts
	if n, del := e.observe(key, gone, now.Add(time.Second)); n != 1 || len(del) != 0 {
		t.Errorf("after the cache shows a and older being deleted: %d unobserved, deleted %v; want 1 and none", n, del)
	}
	if n, _ := e.observe(key, nil, now.Add(expectTimeout+time.Second)); n != 0 {
		t.Errorf("%d creations still expected after the timeout", n)
	}
	e.created(key, "c", now)
	e.forget(key)
	if n, _ := e.observe(key, nil, now); n != 0 {
		t.Errorf("%d creations expected of a forgotten pool", n)
	}
}

// TestRefillGate: a pool's creations wait the delay from the first time it
// is found short, not from each later take, and the next shortage waits the
// whole delay again.
func TestRefillGate(t *testing.T) {
	t.Parallel()
	var g refillGate
	key := client.ObjectKey{Namespace: "ns", Name: "py"}
	other := client.ObjectKey{Namespace: "ns", Name: "go"}
	const delay = 500 * time.Millisecond
	steps := []struct {
		name string
		pool client.ObjectKey
		at   time.Duration
		want time.Duration
	}{
		{"first found short", key, 0, delay},
		{"another take 200ms later", key, 200 * time.Millisecond, 300 * time.Millisecond},
		{"another pool keeps its own clock", other, 300 * time.Millisecond, delay},
		{"the delay has passed", key, delay, 0},
		{"and stays open for the next batches", key, 3 * delay, 0},
	}
	for _, s := range steps {
		if got := g.hold(s.pool, epoch.Add(s.at), delay); got != s.want {
			t.Errorf("%s: hold = %s, want %s", s.name, got, s.want)
		}
	}
	g.done(key)
	if got := g.hold(key, epoch.Add(time.Minute), delay); got != delay {
		t.Errorf("the next shortage after done: hold = %s, want the whole %s", got, delay)
	}
	if got := g.hold(other, epoch.Add(time.Minute), -1); got != 0 {
		t.Errorf("a negative delay: hold = %s, want 0", got)
	}
}

func podNames(pods []corev1.Pod) []string {
	names := make([]string, 0, len(pods))
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return names
}

// podsLabels are the label sets of the pool gauges m holds.
func podsLabels(t *testing.T, m *PoolMetrics) []map[string]string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m.Pods); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			l := map[string]string{}
			for _, lp := range metric.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			out = append(out, l)
		}
	}
	return out
}
