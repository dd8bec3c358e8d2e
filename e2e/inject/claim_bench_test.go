package inject

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
	"sandbox.io/injector/e2e/claimbench"
	"sandbox.io/injector/e2e/startupbench"
	"sandbox.io/injector/internal/cpuacct"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner/api"
)

// TestBenchClaim is `make bench-claim`: in one run on the local cluster,
// our claims (a SandboxClaim through the Go claim package, created to the
// first /execute result: 50 sequential warm, a burst of 20 warm, 8 cold)
// beside kubernetes-sigs/agent-sandbox v1.0.1's controller claiming from a
// SandboxWarmPool of the same busybox image (created to Ready), and the API
// server's floor (a claimant's three dependent writes alone) at the moments
// ours ran. It prints one table, then fails when a goal of
// claimbench.DefaultGoals is missed.
// AGENT_SANDBOX_BIN and AGENT_SANDBOX_CRDS (set by the make target) locate
// the peer.
func TestBenchClaim(t *testing.T) {
	if os.Getenv("E2E_BENCH") != "1" {
		t.Skip("benchmark: run make bench-claim")
	}
	x := requireE2E(t)
	peerBin, peerCRDs := os.Getenv("AGENT_SANDBOX_BIN"), os.Getenv("AGENT_SANDBOX_CRDS")
	if peerBin == "" || peerCRDs == "" {
		t.Fatal("AGENT_SANDBOX_BIN and AGENT_SANDBOX_CRDS are not set (make bench-claim sets them)")
	}
	const (
		sequential = 50
		burst      = 20
		colds      = 8
		poolSize   = 10
	)
	rep := &claimbench.Report{Peer: "agent-sandbox v1.0.1", Burst: burst}

	// Ours: warm pods kept by the node agent, bound by the controller.
	x.installPoolAgent(t)
	t.Cleanup(func() {
		if err := x.install(); err != nil {
			t.Errorf("putting the chart back: %v", err)
		}
	})
	ns := x.namespace(t, "bench-claim", nil)
	p := x.createPool(t, ns, "bench", poolSize)
	cold := x.createPool(t, ns, "cold", 0)
	cl, err := claim.New(x.rest, claim.Config{Transport: claim.TransportDirect})
	if err != nil {
		t.Fatal(err)
	}
	// The floor's writes, unthrottled (client-go's default 5/s would hold
	// them back).
	fast := rest.CopyConfig(x.rest)
	fast.QPS, fast.Burst = 200, 400
	pods := watchPoolPods(t, x.kube, ns)
	// floor is the API server's share of a claim alone, as the envtest
	// bench measures it: the claimant's three dependent writes (the
	// claim's creation, the pod's adoption, the Bound status) as a
	// ConfigMap created and updated twice by a client like the claimant's.
	// It runs at the moments ours do (after the same waits), so that both
	// meet the cluster in the same state.
	floorClient, err := client.New(fast, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	floor := func(ctx context.Context) (time.Duration, error) {
		start := time.Now()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "floor-"}, Data: map[string]string{"step": "0"}}
		if err := floorClient.Create(ctx, cm); err != nil {
			return 0, fmt.Errorf("floor: creating a ConfigMap: %w", err)
		}
		for i := range 2 {
			cm.Data["step"] = fmt.Sprint(i + 1)
			if err := floorClient.Update(ctx, cm); err != nil {
				return 0, fmt.Errorf("floor: updating ConfigMap %s: %w", cm.Name, err)
			}
		}
		return time.Since(start), nil
	}
	// one claims, runs `true` and returns the time from before the
	// claim's creation to the /execute result. Each claim's steps go to
	// traces (the controller's own steps are its metrics). The claims are
	// released after each phase (releaseAll), not between its claims: a
	// release deletes a pod, whose termination would share the machine
	// with the next claims, and agent-sandbox's run releases none.
	var traces, settledTraces []claimTrace
	traceInto := &traces // where one's traces go
	var held []string
	one := func(ctx context.Context, poolName string, noCold bool) (time.Duration, error) {
		start := time.Now()
		sb, err := cl.Claim(ctx, claim.Request{Namespace: ns, Pool: poolName, Env: map[string]string{"K": "v"}, NoCold: noCold})
		if err != nil {
			return 0, err
		}
		res, err := sb.Runner().Execute(ctx, api.ExecuteRequest{Argv: []string{"true"}})
		took := time.Since(start)
		tr := claimTrace{claim: ns + "/" + sb.Claim, start: start, total: took, bound: sb.Duration}
		tracesMu.Lock()
		held = append(held, sb.Claim)
		tracesMu.Unlock()
		if err != nil {
			return 0, fmt.Errorf("first /execute in %s: %w", sb.Pod, err)
		}
		if res.ExitCode != 0 {
			return 0, fmt.Errorf("first /execute in %s: exit code %d", sb.Pod, res.ExitCode)
		}
		tracesMu.Lock()
		*traceInto = append(*traceInto, tr)
		tracesMu.Unlock()
		return took, nil
	}
	releaseAll := func() {
		t.Helper()
		for _, name := range held {
			if err := cl.Release(t.Context(), ns, name); err != nil {
				t.Fatal(err)
			}
		}
		held = nil
		pods.waitNoClaimedPods(t)
	}
	// The machine's CPU use during the timed claims: the local cluster
	// shares two cores with everything else.
	var oursSeqCPU, oursBurstCPU, peerSeqCPU, peerBurstCPU cpuacct.Account
	// Ours' sequential claims with the chart's refill delay and, as its
	// baseline, with the node agent refilling the pool at once
	// (agent.pools.refillDelay=0: a refill then starts while its claim is
	// still binding), in blocks ordered delay, at once, delay: a drift of
	// the cluster over the run weighs on both alike. Each block starts from
	// the agent installed for it and a full pool; the floor, the slowest
	// claims and the controller's steps are of the claims with the delay.
	var oursAtOnceCPU cpuacct.Account
	var delayTraces []claimTrace
	// In the blocks with the delay, each claim made as the pool is full is
	// followed by one made settle after it is full again: the refill that
	// makes the pool full ends with the node's work on the new pod (the
	// firewall's sync of its address, the kubelet's status writes), which
	// the first may meet and the second should not. The goals are on the
	// first.
	const settle = 300 * time.Millisecond
	var oursSettledCPU cpuacct.Account
	rep.Settle = settle
	stepsBefore := x.controllerSteps(t)
	var stepsAtOnce claimbench.Steps
	for _, block := range []struct {
		atOnce bool
		n      int
	}{{false, sequential / 2}, {true, sequential}, {false, sequential - sequential/2}} {
		releaseAll()
		if block.atOnce {
			x.installPoolAgent(t, "--set", "agent.pools.refillDelay=0")
		} else {
			x.installPoolAgent(t)
		}
		x.agentSettled(t)
		traces = nil
		blockSteps := x.controllerSteps(t)
		for i := range block.n {
			pods.waitWarmAtLeast(t, p, poolSize)
			cpu, into := &oursSeqCPU, &rep.OursSequential
			if block.atOnce {
				cpu, into = &oursAtOnceCPU, &rep.OursSequentialRefillAtOnce
			} else {
				f, err := floor(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				rep.FloorSequential = append(rep.FloorSequential, f)
			}
			var d time.Duration
			err = cpu.During(func() (err error) {
				d, err = one(t.Context(), p.Name, true)
				return err
			})
			if err != nil {
				t.Fatalf("our warm claim %d (refill at once: %v): %v", i+1, block.atOnce, err)
			}
			*into = append(*into, d)
			if block.atOnce {
				continue
			}
			pods.waitWarmAtLeast(t, p, poolSize)
			time.Sleep(settle)
			traceInto = &settledTraces
			err = oursSettledCPU.During(func() (err error) {
				d, err = one(t.Context(), p.Name, true)
				return err
			})
			traceInto = &traces
			if err != nil {
				t.Fatalf("our warm claim %d, %s after the pool was full: %v", i+1, settle, err)
			}
			rep.OursSequentialSettled = append(rep.OursSequentialSettled, d)
		}
		if block.atOnce {
			stepsAtOnce = x.controllerSteps(t).Since(blockSteps)
		} else {
			delayTraces = append(delayTraces, traces...)
		}
	}
	bound := x.controllerBoundLog(t)
	rep.Notes = append(rep.Notes, slowest("ours, sequential", delayTraces, 3, bound),
		slowest(fmt.Sprintf("ours, sequential, %s after the pool is full", settle), settledTraces, 3, bound),
		"controller steps, ours, sequential (as the pool is full and later alike): "+x.controllerSteps(t).Since(stepsBefore).Since(stepsAtOnce).Format(slowStep),
		"controller steps, ours, sequential, refill at once: "+stepsAtOnce.Format(slowStep))
	releaseAll()
	for i := range colds {
		d, err := one(t.Context(), cold.Name, false)
		if err != nil {
			t.Fatalf("our cold claim %d: %v", i+1, err)
		}
		rep.OursCold = append(rep.OursCold, d)
	}
	releaseAll()
	x.setPodsPerNode(t, p, burst)
	pods.waitWarmAtLeast(t, p, burst)
	// The burst needs every one of those pods claimable in the
	// controller's cache too (sequential claims need one of ten), which its
	// pool status (written from that cache) says.
	x.waitPoolReadyAtLeast(t, p, burst)
	// The cold claims' pods, released above, are gone from the API before
	// the kubelet has stopped and removed their sandboxes: the burst waits
	// for that too, else it would share the node with their teardown.
	rep.Notes = append(rep.Notes, "ours' burst: "+x.waitSandboxesOfDeletedPodsGone(t, x.soleNode(t)))
	if rep.FloorBurst, err = claimbench.Burst(t.Context(), burst, floor); err != nil {
		t.Fatal(err)
	}
	// What the kubelet finished during the burst (its CRI calls and pod
	// worker runs by operation, counted when each ends), read just before
	// and just after it: the node's reaction to the claims' pod updates, and
	// whether the refill behind them got as far as a started pod.
	node := x.soleNode(t)
	kubeletBefore, kubeletErr := x.kubeletMetrics(t.Context(), node)
	traces = nil
	stepsBefore = x.controllerSteps(t)
	burstStart := time.Now()
	err = oursBurstCPU.During(func() (err error) {
		rep.OursBurst, err = claimbench.Burst(t.Context(), burst, func(ctx context.Context) (time.Duration, error) {
			return one(ctx, p.Name, true)
		})
		return err
	})
	if err != nil {
		t.Fatalf("our burst: %v", err)
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("ours: burst wall %s", time.Since(burstStart).Round(time.Millisecond)),
		slowest("ours, burst", traces, 3, x.controllerBoundLog(t)),
		"controller steps, ours, burst: "+x.controllerSteps(t).Since(stepsBefore).Format(slowStep))
	if kubeletErr == nil {
		var kubeletAfter startupbench.Metrics
		kubeletAfter, kubeletErr = x.kubeletMetrics(t.Context(), node)
		if kubeletErr == nil {
			rep.Notes = append(rep.Notes,
				"kubelet during ours' burst, CRI calls finished: "+startupbench.FormatGrowth(startupbench.GrowthByLabel(kubeletBefore, kubeletAfter, "kubelet_runtime_operations_total", "operation_type")),
				"kubelet during ours' burst, pod worker runs finished: "+startupbench.FormatGrowth(startupbench.GrowthByLabel(kubeletBefore, kubeletAfter, "kubelet_pod_worker_duration_seconds_count", "operation_type")))
		}
	}
	if kubeletErr != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("kubelet during ours' burst: not read (%v)", kubeletErr))
	}
	releaseAll()
	x.setPodsPerNode(t, p, 0)

	// agent-sandbox: its controller out of cluster with the same
	// kubeconfig, its pool in a namespace of its own.
	peerNS := x.namespace(t, "bench-agent-sandbox", nil)
	logPath := filepath.Join(t.TempDir(), "agent-sandbox.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logf.Close() }()
	run := claimbench.PeerRun{
		Binary: peerBin, CRDs: peerCRDs, Kubeconfig: os.Getenv("KUBECONFIG"), Namespace: peerNS,
		Pod: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers: []corev1.Container{{
				Name: "sandbox", Image: x.testImage("busybox"), Command: []string{"sleep", "3600"},
			}},
		},
		Sequential: sequential, Burst: burst, PoolSize: poolSize, Log: logf,
		SequentialCPU: &peerSeqCPU, BurstCPU: &peerBurstCPU,
	}
	rep.PeerSequential, rep.PeerBurst, err = run.Run(t.Context(), x.rest)
	if err != nil {
		tail, _ := os.ReadFile(logPath)
		t.Errorf("agent-sandbox: %v\nits log (last 3000 bytes):\n%s", err, lastBytes(tail, 3000))
	}

	for _, c := range []struct {
		name   string
		cpu    *cpuacct.Account
		claims int
	}{
		{"ours, sequential", &oursSeqCPU, sequential}, {"ours, sequential, refill at once", &oursAtOnceCPU, sequential},
		{fmt.Sprintf("ours, sequential, %s after the pool is full", settle), &oursSettledCPU, sequential}, {"ours, burst", &oursBurstCPU, burst},
		{rep.Peer + ", sequential", &peerSeqCPU, sequential}, {rep.Peer + ", burst", &peerBurstCPU, burst},
	} {
		rep.Notes = append(rep.Notes, fmt.Sprintf("CPU during the timed claims, %s: %s", c.name, c.cpu.Format(6, c.claims)))
	}
	var b strings.Builder
	if err := rep.Write(&b); err != nil {
		t.Fatal(err)
	}
	fmt.Print("\n" + b.String())
	t.Log("\n" + b.String())
	for _, miss := range rep.Check(claimbench.DefaultGoals) {
		t.Errorf("goal missed: %s", miss)
	}
}

// slowStep is the bound (a bucket of claimbench.StepMetric) above which
// the bench counts a controller step as slow: half the sequential goal.
const slowStep = 0.025

// controllerSteps reads the claim controller's step histograms from the
// webhook pod's metrics (the suite runs one replica, which leads).
func (x *env) controllerSteps(t *testing.T) claimbench.Steps {
	t.Helper()
	pods := x.webhookPods(t)
	if len(pods) != 1 {
		t.Fatalf("%d webhook pods, want the one the suite installs", len(pods))
	}
	raw, err := x.kube.CoreV1().Pods(releaseNS).ProxyGet("http", pods[0].Name, "8080", "/metrics", nil).DoRaw(t.Context())
	if err != nil {
		t.Fatalf("reading the webhook's metrics: %v", err)
	}
	steps, err := claimbench.ParseSteps(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return steps
}

// controllerBoundLog reads the claim controller's "claim bound" log lines
// from the webhook pod's log (the suite runs one replica, which leads);
// none when the log cannot be read (the slowest claims are then not split).
func (x *env) controllerBoundLog(t *testing.T) map[string]claimbench.BoundLine {
	t.Helper()
	pods := x.webhookPods(t)
	if len(pods) != 1 {
		t.Fatalf("%d webhook pods, want the one the suite installs", len(pods))
	}
	raw, err := x.kube.CoreV1().Pods(releaseNS).GetLogs(pods[0].Name, &corev1.PodLogOptions{}).DoRaw(t.Context())
	if err != nil {
		t.Logf("reading the webhook's log: %v", err)
		return nil
	}
	bound, err := claimbench.ParseBoundLog(bytes.NewReader(raw))
	if err != nil {
		t.Logf("%v", err)
	}
	return bound
}

// waitSandboxesOfDeletedPodsGone waits, up to a minute, until node's
// kubelet runs no more pod sandboxes (kubelet_running_pods, as of its last
// relist) than the API has pods on the node that are neither terminating
// nor finished, on every reading for relistSpan (the gauge moves at the
// kubelet's relists, a second apart: one reading may predate a pod), and
// says how long it waited.
func (x *env) waitSandboxesOfDeletedPodsGone(t *testing.T, node string) string {
	t.Helper()
	const relistSpan = 2 * time.Second
	start := time.Now()
	var running, live float64
	var heldSince time.Time
	for time.Since(start) < time.Minute {
		m, err := x.kubeletMetrics(t.Context(), node)
		if err != nil {
			return fmt.Sprintf("the kubelet's running pods not read (%v)", err)
		}
		running, _ = m.Sum("kubelet_running_pods", nil)
		pods, err := x.kube.CoreV1().Pods("").List(t.Context(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
		if err != nil {
			t.Fatalf("listing the pods of node %s: %v", node, err)
		}
		live = 0
		for _, pod := range pods.Items {
			if pod.DeletionTimestamp == nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
				live++
			}
		}
		switch {
		case running > live:
			heldSince = time.Time{}
		case heldSince.IsZero():
			heldSince = time.Now()
		case time.Since(heldSince) >= relistSpan:
			return fmt.Sprintf("no sandbox of a deleted or terminating pod left on the node for %s, after %s", relistSpan, time.Since(start).Round(100*time.Millisecond))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Sprintf("the kubelet still ran %.0f pod sandboxes for %.0f pods after a minute: started anyway", running, live)
}

// claimTrace is where one timed claim (namespace/name) went, from before
// its creation (start): until the claimant saw it Bound, and in all (the
// first /execute answered).
type claimTrace struct {
	claim        string
	start        time.Time
	bound, total time.Duration
}

var tracesMu sync.Mutex

// slowest says where the n slowest claims' time went; those the
// controller's "claim bound" lines (bound, by claim) tell of are split at
// its steps too.
func slowest(phase string, traces []claimTrace, n int, bound map[string]claimbench.BoundLine) string {
	tracesMu.Lock()
	defer tracesMu.Unlock()
	s := slices.Clone(traces)
	slices.SortFunc(s, func(a, b claimTrace) int { return cmp.Compare(b.total, a.total) })
	var b strings.Builder
	fmt.Fprintf(&b, "slowest claims, %s (created -> Bound seen -> first /execute):", phase)
	for i, tr := range s {
		if i == n {
			break
		}
		fmt.Fprintf(&b, " %s = %s + %s", ms(tr.total), ms(tr.bound), ms(tr.total-tr.bound))
		if l, ok := bound[tr.claim]; ok {
			fmt.Fprintf(&b, " (ms: %s)", claimbench.Split(tr.start, tr.bound, tr.total, l))
		}
		b.WriteString(";")
	}
	return strings.TrimSuffix(b.String(), ";")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// poolPods is a namespace's pool pods as a watch keeps them: the waits
// between claims read it rather than list the pods from the API server
// every few milliseconds, which took a good share of the API server's CPU
// and left its garbage for the claims that followed (agent-sandbox's run
// polls one small object).
type poolPods struct{ store toolscache.Store }

// watchPoolPods starts the watch of ns's pods labelled with a pool, until
// the test ends, and waits for its first list.
func watchPoolPods(t *testing.T, kube kubernetes.Interface, ns string) poolPods {
	t.Helper()
	f := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = v1alpha1.LabelPool }))
	inf := f.Core().V1().Pods().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); f.Shutdown() })
	f.Start(ctx.Done())
	if !toolscache.WaitForCacheSync(t.Context().Done(), inf.HasSynced) {
		t.Fatalf("the watch of the pool pods of %s did not sync", ns)
	}
	return poolPods{store: inf.GetStore()}
}

// count is how many of the pods match.
func (w poolPods) count(match func(*corev1.Pod) bool) int {
	n := 0
	for _, o := range w.store.List() {
		if pod := o.(*corev1.Pod); match(pod) {
			n++
		}
	}
	return n
}

// waitFor waits, untimed, until at least (or, with atMost, at most) n pods
// match.
func (w poolPods) waitFor(t *testing.T, what string, n int, atMost bool, match func(*corev1.Pod) bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got := w.count(match)
		if !atMost && got >= n || atMost && got <= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting 3m for %s: %d", what, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitWarmAtLeast waits, untimed, until the pool has at least n Ready warm
// pods.
func (w poolPods) waitWarmAtLeast(t *testing.T, p *v1alpha1.SandboxPool, n int) {
	t.Helper()
	w.waitFor(t, fmt.Sprintf("%d Ready warm pods of %s/%s", n, p.Namespace, p.Name), n, false, func(pod *corev1.Pod) bool {
		return pod.Labels[v1alpha1.LabelPool] == p.Name && pod.DeletionTimestamp == nil &&
			pool.State(pod) == v1alpha1.StateWarm && pool.IsReady(pod)
	})
}

// waitPoolReadyAtLeast waits until the pool's status, which the claim
// controller writes from its cache, counts at least n claimable pods.
func (x *env) waitPoolReadyAtLeast(t *testing.T, p *v1alpha1.SandboxPool, n int32) {
	t.Helper()
	c := x.poolClient(t)
	testenv.Eventually(t, time.Minute, fmt.Sprintf("pool %s/%s's status counting %d Ready", p.Namespace, p.Name, n), func() error {
		var got v1alpha1.SandboxPool
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(p), &got); err != nil {
			return err
		}
		if got.Status.Ready < n {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
}

// waitNoClaimedPods waits, untimed, until no claimed pod is left
// (released claims' pods are deleted by the garbage collector).
func (w poolPods) waitNoClaimedPods(t *testing.T) {
	t.Helper()
	w.waitFor(t, "the released claims' pods to be gone (left)", 0, true, func(pod *corev1.Pod) bool {
		return pool.State(pod) == v1alpha1.StateClaimed
	})
}

// agentSettled waits until the node agent just installed is the only one,
// Ready, and a moment more: a restarted agent's start is not a claim's
// cost.
func (x *env) agentSettled(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, "one Ready agent pod, no other", func() error {
		pods, err := x.kube.CoreV1().Pods(releaseNS).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=agent"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 || pods.Items[0].DeletionTimestamp != nil || !isReady(&pods.Items[0]) {
			return fmt.Errorf("%d agent pods", len(pods.Items))
		}
		return nil
	})
	time.Sleep(2 * time.Second)
}

// setPodsPerNode changes the pool's warm pods per node.
func (x *env) setPodsPerNode(t *testing.T, p *v1alpha1.SandboxPool, n int32) {
	t.Helper()
	c := x.poolClient(t)
	patch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"spec":{"podsPerNode":%d}}`, n))
	if err := c.Patch(t.Context(), p.DeepCopy(), patch); err != nil {
		t.Fatalf("setting podsPerNode of %s/%s to %d: %v", p.Namespace, p.Name, n, err)
	}
}
