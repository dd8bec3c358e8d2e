package inject

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner/api"
)

// The upgrade test's sizes and times: bounded, so that it fits the single
// node of 2 cores and a few minutes of CI.
const (
	upgradeWarmPerPool  = 3  // warm pods of each of the two pools
	loadPodsPerSecond   = 10 // annotated pods created per second
	loadClaimsPerSecond = 5  // SandboxClaims created per second
	// claimsInFlight bounds the claims created and not yet bound: each
	// takes a pod, and the single node of 2 cores starts far fewer than 5
	// a second (unbounded, cold pods filled its 110 pods, and the
	// webhook's surge pod could not be scheduled). A tick that finds this
	// many in flight creates nothing and is counted as deferred.
	claimsInFlight = 5
	loadLead       = 5 * time.Second // the load runs this long before helm starts
	loadAtLeast    = time.Minute     // and at least this long in all
	loadTail       = 5 * time.Second // and at least this long after helm returns
	claimSettle    = 2 * time.Minute // how long claims created under load may take to bind
	rolloutWait    = 4 * time.Minute // how long warm pods may take to follow the runner
	// drainWait is how long the replaced webhook pods may take to stop:
	// the chart's drain timeout (100 s) and then some.
	drainWait = 3 * time.Minute
	// loadLabel marks the load's claims with the phase that made them.
	loadLabel = "e2e.sandbox.io/upgrade-phase"
	// unschedulable is a node label no node has: the load's pods are
	// admitted (what is counted) and never scheduled, so that 10 pods a
	// second do not spend the node's 2 cores on starting containers. Warm
	// and claimed pods start for real.
	unschedulable = "e2e.sandbox.io/never-scheduled"
	keptEnv       = "claimed before the upgrade"
	keptFile      = "written before the upgrade\n"
)

// TestUpgradeFromPreviousRelease is issue #16's proof on the local cluster:
// the chart and images of previousRelease (built from its own source) are
// installed fresh with its CRDs, with two pools of warm pods and a sandbox
// claimed; then `helm upgrade` to the working tree (its CRDs applied first,
// as the README says) and `helm rollback` to the previous release, each
// while a load creates 10 annotated pods and 5 claims a second. For each it
// reports created versus admitted pods and attempted versus bound claims
// (both must match), how long until every warm pod runs the runner of the
// release now installed, and that the sandbox claimed before the upgrade
// still answers its claimant. The suite's chart of this tree is installed
// again at the end.
//
// The load goes on until the replaced webhook pods have stopped (their
// drain's end is where an admission used to be lost). A claim lost with
// PodLost is shown with its pod as a watch saw it.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	x := requireE2E(t)
	prev := x.previousRelease(t)
	old := *x
	old.tag = prev.tag
	oldRunner, newRunner := x.runnerRef(prev.tag), x.runnerRef(x.tag)
	if oldRunner == newRunner {
		t.Fatalf("the working tree's images have the previous release's tag %s", x.tag)
	}
	ctx := t.Context()
	// Registered first, so it runs last: after the namespaces' deletion.
	t.Cleanup(func() {
		if err := x.install(); err != nil {
			t.Errorf("putting the working tree's chart back: %v", err)
		}
		x.labelNodes(context.Background(), t, "")
	})

	// The previous release, installed fresh with its own CRDs, as on a
	// cluster that runs it.
	start := time.Now()
	if err := x.helmCmd(ctx, "uninstall", release, "--namespace", releaseNS, "--wait"); err != nil {
		t.Fatal(err)
	}
	if err := x.applyCRDs(ctx, filepath.Join(prev.chart, "crds")); err != nil {
		t.Fatal(err)
	}
	if err := x.helmCmd(ctx, append([]string{"install", release, prev.chart}, old.upgradeValues()...)...); err != nil {
		t.Fatalf("installing the previous release: %v", err)
	}
	if err := x.waitForWebhook(ctx); err != nil {
		t.Fatal(err)
	}
	prevRevision := x.helmRevision(t)
	t.Logf("previous release %s installed (revision %d) in %s", prev.commit[:7], prevRevision, time.Since(start).Round(time.Second))

	u := x.newUpgradeRun(t)
	for _, name := range []string{"steady", "load"} {
		p := x.createPool(t, u.ns, name, upgradeWarmPerPool)
		for _, pod := range x.waitWarmReady(t, p, upgradeWarmPerPool, "") {
			if got := runnerImageOf(&pod); got != oldRunner {
				t.Fatalf("warm pod %s of the previous release runs %q, want %q", pod.Name, got, oldRunner)
			}
		}
		u.pools = append(u.pools, p)
	}
	// The sandbox whose claimant must keep it through upgrade and rollback.
	u.claimKept(t)
	if version, err := u.sandboxAnswers(ctx); err != nil {
		t.Fatalf("the sandbox claimed before the upgrade: %v", err)
	} else {
		t.Logf("claimed %s (pod %s, runner %s) before the upgrade", u.sandbox.Claim, u.sandbox.Pod, version)
	}

	// Upgrade to the working tree: its CRDs first (helm never upgrades
	// crds/), then helm upgrade.
	if err := x.applyCRDs(ctx, filepath.Join(x.root, "charts", "sandbox-injector", "crds")); err != nil {
		t.Fatal(err)
	}
	upgrade := u.phase(t, "upgrade", append([]string{"upgrade", release, filepath.Join(x.root, "charts", "sandbox-injector")}, x.upgradeValues()...), newRunner)
	x.waitWarmReady(t, u.pools[1], upgradeWarmPerPool, "")
	// Rollback to the previous release: helm leaves the CRDs as they are,
	// the working tree's, which the previous release reads.
	rollback := u.phase(t, "rollback", []string{"rollback", release, strconv.Itoa(prevRevision), "--namespace", releaseNS, "--wait", "--timeout", "3m"}, oldRunner)

	var b strings.Builder
	fmt.Fprintf(&b, "upgrade from %s (runner %s) to the working tree (runner %s) and back; 2 webhook replicas, 2 pools of %d warm pods; load %d pods/s, %d claims/s (at most %d in flight)\n",
		prev.commit[:7], prev.tag, x.tag, upgradeWarmPerPool, loadPodsPerSecond, loadClaimsPerSecond, claimsInFlight)
	writePhases(&b, []upgradePhase{upgrade, rollback}, u.history)
	fmt.Print("\n" + b.String())
	t.Log("\n" + b.String())
	checkPhases(t, []upgradePhase{upgrade, rollback})
}

// checkPhases fails the test for what a phase under load lost: a pod not
// admitted with the injection, a claim not bound, warm pods not on the
// phase's runner, webhook pods still stopping, the sandbox claimed before
// no longer answering.
func checkPhases(t *testing.T, phases []upgradePhase) {
	t.Helper()
	for _, ph := range phases {
		if ph.pods.tried == 0 || ph.pods.ok != ph.pods.tried {
			t.Errorf("%s: %d pods created, %d admitted with the injection", ph.name, ph.pods.tried, ph.pods.ok)
		}
		if ph.claims.tried == 0 || ph.claims.ok != ph.claims.tried {
			t.Errorf("%s: %d claims attempted, %d bound", ph.name, ph.claims.tried, ph.claims.ok)
		}
		if ph.rollout < 0 {
			t.Errorf("%s: warm pods did not all run the phase's runner within %s", ph.name, rolloutWait)
		}
		if ph.drained < 0 {
			t.Errorf("%s: replaced webhook pods still stopping %s after helm started", ph.name, drainWait)
		}
		if ph.sandboxErr != nil {
			t.Errorf("%s: the sandbox claimed before: %v", ph.name, ph.sandboxErr)
		}
	}
}

// upgradeValues are the values of both releases: the suite's, the node
// agent with warm pools and the chart's default two webhook replicas (the
// rollout a platform team runs).
func (x *env) upgradeValues() []string {
	args := append(x.helmArgs(), x.agentArgs()...)
	return append(args, "--set", "agent.pools.enabled=true", "--set", "agent.pools.maxCreates=2",
		"--set", "runner.injectionMethod=auto", "--set", "webhook.replicas=2")
}

// runnerRef is the runner image the chart names for tag.
func (x *env) runnerRef(tag string) string {
	return x.registry + "/sandbox-runner:" + tag
}

// runnerImageOf is the runner image the pod was injected with.
func runnerImageOf(p *corev1.Pod) string {
	var st v1alpha1.InjectionStatus
	_ = json.Unmarshal([]byte(p.Annotations[v1alpha1.AnnotationStatus]), &st)
	return st.RunnerImage
}

// helmRevision is the release's current revision.
func (x *env) helmRevision(t *testing.T) int {
	t.Helper()
	out, err := x.helmOutput(t.Context(), "status", release, "--namespace", releaseNS, "-o", "json")
	if err != nil {
		t.Fatalf("helm status: %v\n%s", err, out)
	}
	var st struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Version == 0 {
		t.Fatalf("helm status: revision %d, %v\n%s", st.Version, err, out)
	}
	return st.Version
}

// upgradeRun is what the phases share: the namespaces, clients with a
// rate limit the load needs, the pools and the sandbox claimed before.
type upgradeRun struct {
	x       *env
	ns      string // pools, the sandbox and the load's claims
	podNS   string // the load's pods
	kube    kubernetes.Interface
	crc     client.Client
	pools   []*v1alpha1.SandboxPool // steady (left alone), load (claimed from)
	sandbox *claim.Sandbox
	history *podHistory // of the pods of ns
}

func (x *env) newUpgradeRun(t *testing.T) *upgradeRun {
	t.Helper()
	cfg := rest.CopyConfig(x.rest)
	cfg.QPS, cfg.Burst = 200, 400
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	crc, err := client.New(cfg, client.Options{Scheme: x.poolClient(t).Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	u := &upgradeRun{x: x, ns: x.namespace(t, "upgrade", nil), podNS: x.namespace(t, "upgrade-pods", nil), kube: kube, crc: crc}
	u.history = watchPodHistory(t.Context(), kube, u.ns)
	return u
}

// claimKept claims the sandbox of the "steady" pool that must keep
// answering through the run (env K=keptEnv, kept.txt holding keptFile)
// into u.sandbox; it is released when the test ends.
func (u *upgradeRun) claimKept(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	cl, err := claim.New(u.x.rest, claim.Config{Transport: claim.TransportProxy})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := cl.Claim(ctx, claim.Request{Namespace: u.ns, Pool: "steady", NoCold: true, Env: map[string]string{"K": keptEnv}})
	if err != nil {
		t.Fatalf("claiming the sandbox kept through the run: %v", err)
	}
	t.Cleanup(func() { _ = cl.Release(context.Background(), u.ns, sb.Claim) })
	if err := sb.CopyTo(ctx, strings.NewReader(keptFile), "kept.txt", 0); err != nil {
		t.Fatal(err)
	}
	u.sandbox = sb
}

// sandboxAnswers checks that the sandbox claimed before the upgrade
// answers its claimant's token (through the API server's pod proxy) with
// its claim's env and the file written then, and returns its runner's
// version.
func (u *upgradeRun) sandboxAnswers(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r := u.sandbox.Runner()
	res, err := r.Execute(ctx, api.ExecuteRequest{Shell: "echo $K"})
	if err != nil {
		return "", fmt.Errorf("exec: %w", err)
	}
	if res.Stdout != keptEnv+"\n" || res.ExitCode != 0 {
		return "", fmt.Errorf("exec echo $K: exit %d, stdout %q, want %q", res.ExitCode, res.Stdout, keptEnv+"\n")
	}
	f, err := r.GetFile(ctx, "kept.txt")
	if err != nil {
		return "", fmt.Errorf("reading kept.txt: %w", err)
	}
	body, err := io.ReadAll(f)
	_ = f.Close()
	if err != nil {
		return "", fmt.Errorf("reading kept.txt: %w", err)
	}
	if string(body) != keptFile {
		return "", fmt.Errorf("kept.txt holds %q, want %q", body, keptFile)
	}
	st, err := r.Status(ctx)
	if err != nil {
		return "", fmt.Errorf("status: %w", err)
	}
	return st.Version, nil
}

// upgradePhase is what one helm upgrade or rollback under load measured.
type upgradePhase struct {
	name             string
	helm             time.Duration // the helm command, --wait included
	pods             loadCount     // created (tried) and admitted with the injection (ok)
	claims           loadCount     // attempted (tried) and bound (ok)
	claimsDeferred   int           // claim ticks skipped with claimsInFlight in flight
	bindP50, bindMax time.Duration // creation to seen Bound
	rollout          time.Duration // from helm's start until every warm pod runs the target runner; < 0: not within rolloutWait
	drained          time.Duration // from helm's start until no webhook pod is stopping; < 0: not within drainWait
	sandboxVersion   string        // the runner version the sandbox claimed before answered with
	sandboxErr       error
	lostPods         []string // the pods of the claims that failed
}

// phase runs helm (args) under the load and measures it; target is the
// runner image of the release helm installs.
func (u *upgradeRun) phase(t *testing.T, name string, args []string, target string) upgradePhase {
	t.Helper()
	ctx := t.Context()
	ph := upgradePhase{name: name, rollout: -1, drained: -1}
	stop := make(chan struct{})
	loadStart := time.Now()
	pods := u.startPodLoad(ctx, stop)
	claims := u.startClaimLoad(ctx, name, stop)
	time.Sleep(loadLead)

	helmStart := time.Now()
	rolled := make(chan time.Duration, 1)
	go func() { rolled <- u.waitRollout(ctx, helmStart, target) }()
	helmErr := u.x.helmCmd(ctx, args...)
	ph.helm = time.Since(helmStart)
	if helmErr == nil {
		// The load goes on until the replaced webhook pods have stopped:
		// the end of their drain is where an admission could be lost.
		ph.drained = u.waitWebhookDrained(ctx, helmStart)
		time.Sleep(max(time.Until(loadStart.Add(loadAtLeast)), loadTail))
	}
	close(stop)
	ph.pods = pods.wait()
	ph.claims, ph.claimsDeferred, ph.bindP50, ph.bindMax = claims.wait()
	ph.lostPods = claims.lostPods
	if helmErr != nil {
		t.Fatalf("%s: %v (meanwhile pods %d/%d, claims %d/%d, %d deferred, lost: %v %v)", name, helmErr,
			ph.pods.ok, ph.pods.tried, ph.claims.ok, ph.claims.tried, ph.claimsDeferred, ph.pods.errs, ph.claims.errs)
	}
	ph.rollout = <-rolled
	ph.sandboxVersion, ph.sandboxErr = u.sandboxAnswers(ctx)
	t.Logf("%s: helm %s, old webhook pods stopped after %s, pods %d/%d, claims %d/%d, warm pods on %s after %s, the sandbox claimed before answers (runner %s, %v)",
		name, ph.helm.Round(time.Millisecond), ph.drained.Round(time.Millisecond), ph.pods.ok, ph.pods.tried, ph.claims.ok, ph.claims.tried, target, ph.rollout.Round(time.Millisecond), ph.sandboxVersion, ph.sandboxErr)
	return ph
}

// waitWebhookDrained returns how long after since no webhook pod is
// stopping (none has a deletion timestamp); -1 when that takes longer than
// drainWait.
func (u *upgradeRun) waitWebhookDrained(ctx context.Context, since time.Time) time.Duration {
	deadline := since.Add(drainWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		list, err := u.kube.CoreV1().Pods(releaseNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=webhook"})
		if err == nil && !slices.ContainsFunc(list.Items, func(p corev1.Pod) bool { return p.DeletionTimestamp != nil }) {
			return time.Since(since)
		}
		time.Sleep(time.Second)
	}
	return -1
}

// waitRollout returns how long after since every warm pod of the run's
// pools (not being deleted) runs target and the steady pool has all its
// warm pods Ready on it; -1 when that takes longer than rolloutWait.
func (u *upgradeRun) waitRollout(ctx context.Context, since time.Time, target string) time.Duration {
	deadline := since.Add(rolloutWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		list, err := u.kube.CoreV1().Pods(u.ns).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelState + "=" + v1alpha1.StateWarm})
		if err == nil {
			done, steady := true, 0
			for i := range list.Items {
				p := &list.Items[i]
				if p.DeletionTimestamp != nil || pool.State(p) != v1alpha1.StateWarm {
					continue
				}
				if runnerImageOf(p) != target {
					done = false
					break
				}
				if p.Labels[v1alpha1.LabelPool] == u.pools[0].Name && isReady(p) {
					steady++
				}
			}
			if done && steady >= upgradeWarmPerPool {
				return time.Since(since)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return -1
}

// loadCount counts what a load tried, what succeeded, and why the rest
// did not.
type loadCount struct {
	tried, ok int
	errs      map[string]int // a few distinct reasons, with their counts
}

func (c *loadCount) fail(reason string) {
	if c.errs == nil {
		c.errs = map[string]int{}
	}
	if len(reason) > 300 {
		reason = reason[:300] + "..."
	}
	if _, seen := c.errs[reason]; !seen && len(c.errs) >= 5 {
		reason = "(other reasons)"
	}
	c.errs[reason]++
}

// podLoad creates loadPodsPerSecond annotated pods a second and deletes
// each once created.
type podLoad struct {
	wg sync.WaitGroup
	mu sync.Mutex
	c  loadCount
}

func (u *upgradeRun) startPodLoad(ctx context.Context, stop <-chan struct{}) *podLoad {
	l := &podLoad{}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		everyTick(ctx, stop, loadPodsPerSecond, func() {
			l.mu.Lock()
			l.c.tried++
			l.mu.Unlock()
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				l.one(ctx, u)
			}()
		})
	}()
	return l
}

// everyTick calls each perSecond times a second until stop is closed or
// ctx is done.
func everyTick(ctx context.Context, stop <-chan struct{}, perSecond int, each func()) {
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		each()
	}
}

func (l *podLoad) one(ctx context.Context, u *upgradeRun) {
	pod := busyboxPod(u.x, u.podNS, "", map[string]string{v1alpha1.AnnotationInject: "true"})
	pod.GenerateName = "load-"
	pod.Spec.NodeSelector = map[string]string{unschedulable: "true"}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	created, err := u.kube.CoreV1().Pods(u.podNS).Create(cctx, pod, metav1.CreateOptions{})
	l.mu.Lock()
	switch {
	case err != nil:
		l.c.fail(err.Error())
	case created.Annotations[v1alpha1.AnnotationStatus] == "":
		// Copy or image volume, as the node allows: the status
		// annotation is what every injection leaves.
		l.c.fail("created without the injection (no " + v1alpha1.AnnotationStatus + " annotation)")
	default:
		l.c.ok++
	}
	l.mu.Unlock()
	if err == nil {
		_ = u.kube.CoreV1().Pods(u.podNS).Delete(context.WithoutCancel(cctx), created.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
	}
}

// wait waits for the creations in flight once stop is closed.
func (l *podLoad) wait() loadCount {
	l.wg.Wait()
	return l.c
}

// claimLoad creates loadClaimsPerSecond SandboxClaims of the load pool a
// second (a cold pod allowed, as by default) and deletes each once bound.
type claimLoad struct {
	creators sync.WaitGroup
	swept    chan struct{} // closed when the sweeper is done
	created  chan struct{} // closed once no more claims are created
	mu       sync.Mutex
	c        loadCount
	pending  map[string]time.Time // created, neither bound nor finished: when created
	inFlight int                  // being created or pending
	deferred int                  // ticks that found claimsInFlight in flight
	bind     []time.Duration
	lostPods []string // the pods of the claims that failed
}

func (u *upgradeRun) startClaimLoad(ctx context.Context, phase string, stop <-chan struct{}) *claimLoad {
	l := &claimLoad{swept: make(chan struct{}), created: make(chan struct{}), pending: map[string]time.Time{}}
	l.creators.Add(1)
	go func() {
		defer l.creators.Done()
		everyTick(ctx, stop, loadClaimsPerSecond, func() {
			l.mu.Lock()
			if l.inFlight >= claimsInFlight {
				l.deferred++
				l.mu.Unlock()
				return
			}
			l.c.tried++
			l.inFlight++
			l.mu.Unlock()
			l.creators.Add(1)
			go func() {
				defer l.creators.Done()
				l.one(ctx, u, phase)
			}()
		})
	}()
	go l.sweep(ctx, u, phase)
	return l
}

func (l *claimLoad) one(ctx context.Context, u *upgradeRun, phase string) {
	token, err := claim.NewToken()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	at := time.Now()
	sbc := claim.NewClaim(claim.Request{Namespace: u.ns, Pool: u.pools[1].Name, Labels: map[string]string{loadLabel: phase}}, token)
	if err == nil {
		err = u.crc.Create(cctx, sbc)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.c.fail("creating: " + err.Error())
		l.inFlight--
		return
	}
	l.pending[sbc.Name] = at
}

// sweep counts the claims that are bound (and releases them) or finished
// without binding, until no more are created and none is pending, or
// claimSettle has passed since.
func (l *claimLoad) sweep(ctx context.Context, u *upgradeRun, phase string) {
	defer close(l.swept)
	var deadline time.Time
	for ctx.Err() == nil {
		if deadline.IsZero() {
			select {
			case <-l.created:
				deadline = time.Now().Add(claimSettle)
			default:
			}
		}
		var list v1alpha1.SandboxClaimList
		if err := u.crc.List(ctx, &list, client.InNamespace(u.ns), client.MatchingLabels{loadLabel: phase}); err == nil {
			l.account(ctx, u, list.Items)
		}
		l.mu.Lock()
		left := len(l.pending)
		if !deadline.IsZero() && (left == 0 || time.Now().After(deadline)) {
			for name := range l.pending {
				l.c.fail(fmt.Sprintf("not bound within %s of the load's end", claimSettle))
				delete(l.pending, name)
			}
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		time.Sleep(250 * time.Millisecond)
	}
}

func (l *claimLoad) account(ctx context.Context, u *upgradeRun, claims []v1alpha1.SandboxClaim) {
	for i := range claims {
		sbc := &claims[i]
		l.mu.Lock()
		created, pending := l.pending[sbc.Name]
		done := false
		if pending {
			switch sbc.Status.Phase {
			case v1alpha1.ClaimBound:
				l.c.ok++
				l.bind = append(l.bind, time.Since(created))
				done = true
			case v1alpha1.ClaimFailed, v1alpha1.ClaimExpired:
				reason := string(sbc.Status.Phase)
				if sbc.Status.PodName != "" {
					l.lostPods = append(l.lostPods, sbc.Status.PodName)
				}
				if cond := meta.FindStatusCondition(sbc.Status.Conditions, v1alpha1.ConditionBound); cond != nil {
					reason += " " + cond.Reason + ": " + cond.Message
				}
				l.c.fail(reason)
				done = true
			}
		}
		if done {
			delete(l.pending, sbc.Name)
			l.inFlight--
		}
		l.mu.Unlock()
		// Released at once, so that the node holds few claimed pods; one
		// not deleted here goes with the namespace.
		if done {
			if err := u.crc.Delete(ctx, sbc); err != nil && !apierrors.IsNotFound(err) {
				l.mu.Lock()
				l.c.fail("releasing: " + err.Error())
				l.mu.Unlock()
			}
		}
	}
}

// wait waits, once stop is closed, for the creations in flight, then for
// every claim to bind or fail (at most claimSettle), and returns the counts
// and the times to bind.
func (l *claimLoad) wait() (loadCount, int, time.Duration, time.Duration) {
	l.creators.Wait()
	close(l.created)
	<-l.swept
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.bind)
	var p50, top time.Duration
	if n := len(l.bind); n > 0 {
		p50, top = l.bind[n/2], l.bind[n-1]
	}
	return l.c, l.deferred, p50, top
}

// writePhases prints the phases as one table, then why anything was lost,
// with the story of each lost claim's pod from history.
func writePhases(w io.Writer, phases []upgradePhase, history *podHistory) {
	fmt.Fprintf(w, "%-9s %8s %14s %18s %18s %9s %16s %22s  %s\n", "phase", "helm", "old hooks gone", "pods created/adm.", "claims tried/bound", "deferred", "bind p50/max", "all warm pods on it", "claimed-before sandbox")
	for _, ph := range phases {
		rollout := "not in " + rolloutWait.String()
		if ph.rollout >= 0 {
			rollout = ph.rollout.Round(100*time.Millisecond).String() + " from helm"
		}
		sandbox := "answers, runner " + ph.sandboxVersion
		if ph.sandboxErr != nil {
			sandbox = "FAILED: " + ph.sandboxErr.Error()
		}
		drained := "not in " + drainWait.String()
		if ph.drained >= 0 {
			drained = ph.drained.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(w, "%-9s %8s %14s %18s %18s %9d %16s %22s  %s\n", ph.name, ph.helm.Round(100*time.Millisecond), drained,
			fmt.Sprintf("%d/%d", ph.pods.tried, ph.pods.ok), fmt.Sprintf("%d/%d", ph.claims.tried, ph.claims.ok), ph.claimsDeferred,
			ph.bindP50.Round(10*time.Millisecond).String()+"/"+ph.bindMax.Round(10*time.Millisecond).String(), rollout, sandbox)
	}
	for _, ph := range phases {
		for what, c := range map[string]loadCount{"pods": ph.pods, "claims": ph.claims} {
			for reason, n := range c.errs {
				fmt.Fprintf(w, "  %s %s lost %d: %s\n", ph.name, what, n, reason)
			}
		}
		for _, pod := range ph.lostPods {
			fmt.Fprintf(w, "    pod %s of a failed %s claim, as a watch saw it:\n%s", pod, ph.name, history.story(pod))
		}
	}
}
