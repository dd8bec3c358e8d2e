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
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
		if p.DeletionTimestamp == nil && p.Spec.NodeName == node && p.Labels[v1alpha1.LabelState] == state {
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

// claim flips a warm pod to claimed, as package claim does: one update
// conditioned on the resourceVersion read.
func (x *poolEnv) claim(t *testing.T, pod corev1.Pod) {
	t.Helper()
	for {
		var fresh corev1.Pod
		if err := x.c.Get(t.Context(), client.ObjectKeyFromObject(&pod), &fresh); err != nil {
			t.Fatal(err)
		}
		fresh.Labels[v1alpha1.LabelState] = v1alpha1.StateClaimed
		fresh.Labels[v1alpha1.LabelOrigin] = v1alpha1.OriginWarm
		err := x.c.Update(t.Context(), &fresh)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
}

// waitStatus waits until the pool's status satisfies check.
func (x *poolEnv) waitStatus(t *testing.T, ns, name, what string, check func(*v1alpha1.SandboxPool) error) *v1alpha1.SandboxPool {
	t.Helper()
	var p v1alpha1.SandboxPool
	testenv.Eventually(t, 30*time.Second, what, func() error {
		if err := x.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
			return err
		}
		return check(&p)
	})
	return &p
}

// entryIs checks node's status entry and that the totals are the sums of
// the entries.
func entryIs(node string, desired, warm, ready, claimed int32) func(*v1alpha1.SandboxPool) error {
	return func(p *v1alpha1.SandboxPool) error {
		var e *v1alpha1.NodePoolStatus
		var sumD, sumR int32
		for i := range p.Status.Nodes {
			sumD += p.Status.Nodes[i].Desired
			sumR += p.Status.Nodes[i].Ready
			if p.Status.Nodes[i].Node == node {
				e = &p.Status.Nodes[i]
			}
		}
		if e == nil {
			return fmt.Errorf("no status entry for %s in %+v", node, p.Status.Nodes)
		}
		if e.Desired != desired || e.Warm != warm || e.Ready != ready || e.Claimed != claimed || e.ObservedGeneration != p.Generation {
			return fmt.Errorf("entry %+v, want desired %d warm %d ready %d claimed %d generation %d", *e, desired, warm, ready, claimed, p.Generation)
		}
		if p.Status.Desired != sumD || p.Status.Ready != sumR {
			return fmt.Errorf("totals %d/%d, entries sum to %d/%d", p.Status.Ready, p.Status.Desired, sumR, sumD)
		}
		return nil
	}
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
		st := x.waitStatus(t, ns, "py", "3 of 3 ready", entryIs(node, 3, 3, 3, 0))
		if st.Status.Desired != 3 || st.Status.Ready != 3 {
			t.Errorf("totals %d/%d, want 3/3", st.Status.Ready, st.Status.Desired)
		}
		if c := meta.FindStatusCondition(st.Status.Conditions, ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("Ready condition %+v, want True", c)
		}

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
			return fmt.Errorf("still there (err %v)", err)
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
		x.waitStatus(t, ns, "py", "one claimed, 3 warm ready", entryIs(node, 3, 3, 3, 1))
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
		x.waitStatus(t, ns, "py", "new generation observed", entryIs(node, 3, 3, 3, 1))
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

	t.Run("refills in batches of MaxStarting", func(t *testing.T) {
		const ns, node = "batch", "node-batch"
		x.namespace(t, ns)
		x.node(t, node, nil)
		a := x.startAgent(t, node, 2)
		x.pool(t, ns, "big", 5)
		// Two are created; the rest wait until those are Ready.
		pods := x.waitWarm(t, ns, "big", node, 2)
		x.waitStatus(t, ns, "big", "two starting", entryIs(node, 5, 2, 0, 0))
		if n := len(x.pods(t, ns, "big", node, v1alpha1.StateWarm)); n != 2 {
			t.Fatalf("%d warm pods while two are starting, want 2", n)
		}
		x.markReady(t, pods)
		pods = x.waitWarm(t, ns, "big", node, 4)
		x.markReady(t, pods)
		pods = x.waitWarm(t, ns, "big", node, 5)
		x.markReady(t, pods)
		x.waitStatus(t, ns, "big", "5 ready", entryIs(node, 5, 5, 5, 0))
		if got := testutil.ToFloat64(a.metrics.Created.WithLabelValues(ns, "big")); got != 5 {
			t.Errorf("created %v pods, want 5", got)
		}
	})

	t.Run("the entry of a removed node is dropped by its neighbour", func(t *testing.T) {
		const ns = "gone"
		x.namespace(t, ns)
		x.node(t, "node-gone-a", nil)
		x.node(t, "node-gone-b", nil)
		fast := func(c *PoolConfig) { c.NodeCheckEvery = time.Second }
		x.startAgent(t, "node-gone-a", 5, fast)
		b := x.startAgent(t, "node-gone-b", 5, fast)
		x.pool(t, ns, "py", 1)
		x.waitStatus(t, ns, "py", "two entries", func(p *v1alpha1.SandboxPool) error {
			if len(p.Status.Nodes) != 2 || p.Status.Desired != 2 {
				return fmt.Errorf("status %+v", p.Status)
			}
			return nil
		})
		// Node b goes away with its agent; a, its neighbour in the ring,
		// drops b's entry and the totals forget it.
		b.stop()
		if err := x.c.Delete(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-gone-b"}}); err != nil {
			t.Fatal(err)
		}
		x.waitStatus(t, ns, "py", "b's entry dropped", func(p *v1alpha1.SandboxPool) error {
			if len(p.Status.Nodes) != 1 || p.Status.Nodes[0].Node != "node-gone-a" || p.Status.Desired != 1 {
				return fmt.Errorf("status %+v", p.Status)
			}
			return nil
		})
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

	t.Run("two agents write their own entries and the totals", func(t *testing.T) {
		const ns = "two"
		x.namespace(t, ns)
		x.node(t, "node-b", nil)
		x.node(t, "node-c", nil)
		x.startAgent(t, "node-b", 5)
		x.startAgent(t, "node-c", 5)
		x.pool(t, ns, "js", 2)
		x.markReady(t, x.waitWarm(t, ns, "js", "node-b", 2))
		x.waitStatus(t, ns, "js", "node-b ready", entryIs("node-b", 2, 2, 2, 0))
		x.markReady(t, x.waitWarm(t, ns, "js", "node-c", 2)[:1])
		st := x.waitStatus(t, ns, "js", "both entries", func(p *v1alpha1.SandboxPool) error {
			if err := entryIs("node-b", 2, 2, 2, 0)(p); err != nil {
				return err
			}
			return entryIs("node-c", 2, 2, 1, 0)(p)
		})
		if st.Status.Desired != 4 || st.Status.Ready != 3 {
			t.Errorf("totals ready %d of %d, want 3 of 4", st.Status.Ready, st.Status.Desired)
		}
		if c := meta.FindStatusCondition(st.Status.Conditions, ConditionReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonFilling {
			t.Errorf("Ready condition %+v, want False/Filling", c)
		}
		// Each entry is owned by its node's apply manager.
		var full v1alpha1.SandboxPool
		if err := x.c.Get(t.Context(), client.ObjectKeyFromObject(st), &full); err != nil {
			t.Fatal(err)
		}
		applied := map[string]bool{}
		for _, mf := range full.ManagedFields {
			if mf.Operation == metav1.ManagedFieldsOperationApply && mf.Subresource == "status" {
				applied[mf.Manager] = true
			}
		}
		if !applied[FieldManager("node-b")] || !applied[FieldManager("node-c")] {
			t.Errorf("apply managers of the status %v, want both nodes'", applied)
		}
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
		x.waitStatus(t, ns, "bad", "the entry says 0 of 2", entryIs(node, 2, 0, 0, 0))
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
		var p v1alpha1.SandboxPool
		if err := x.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "gpu"}, &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Status.Nodes) != 0 {
			t.Errorf("status entries %+v on an unselected node", p.Status.Nodes)
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
		x.waitStatus(t, ns, "gpu", "the entry dropped", func(p *v1alpha1.SandboxPool) error {
			if len(p.Status.Nodes) != 0 || p.Status.Desired != 0 {
				return fmt.Errorf("entries %+v, desired %d", p.Status.Nodes, p.Status.Desired)
			}
			return nil
		})
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

func podNames(pods []corev1.Pod) []string {
	names := make([]string, 0, len(pods))
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return names
}
