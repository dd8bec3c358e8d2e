package agent

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/pool"
)

// history is what happened to a pool's pods, in one order: the webhook's
// answers (appended before it answers) and the pods' creations and
// deletions as a watch sees them (after they happened), so an answer that
// caused a deletion comes before it.
type history struct {
	mu      sync.Mutex
	entries []string
}

func (h *history) add(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append(h.entries, fmt.Sprintf(format, args...))
}

func (h *history) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.entries)
}

// runnerWebhook is a real mutating admission webhook, served over TLS on
// loopback and registered like the chart's (sideEffects None, so the API
// server calls it for dry-run requests too), for the pool pods of one
// namespace: it writes sandbox.io/status naming its image as the injected
// runner into each, and records its answers to the pods of one pool in a
// history: "dry-run <image>" or "create <image>".
type runnerWebhook struct {
	pool string
	log  *history

	mu           sync.Mutex
	image        string
	refuseDryRun bool
	dryRuns      int // of the pool's pods, answered or refused
}

// setImage "upgrades the webhook": from now on it injects image.
func (w *runnerWebhook) setImage(image string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.image = image
	w.log.add("webhook now injects %s", image)
}

func (w *runnerWebhook) dryRunCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dryRuns
}

func (w *runnerWebhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(rw, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	var pod corev1.Pod
	if err := json.Unmarshal(review.Request.Object.Raw, &pod); err != nil {
		http.Error(rw, "not a pod", http.StatusBadRequest)
		return
	}
	dryRun := review.Request.DryRun != nil && *review.Request.DryRun
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	w.mu.Lock()
	ours := pod.Labels[v1alpha1.LabelPool] == w.pool
	if ours && dryRun {
		w.dryRuns++
	}
	switch {
	case dryRun && w.refuseDryRun:
		resp.Allowed = false
		resp.Result = &metav1.Status{Code: http.StatusForbidden, Message: "this webhook refuses dry-run requests"}
		if ours {
			w.log.add("dry-run refused")
		}
	default:
		status := fmt.Sprintf(`{"state":"injected","runnerImage":%q}`, w.image)
		var patch []map[string]any
		if pod.Annotations == nil {
			patch = append(patch, map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]string{}})
		}
		patch = append(patch, map[string]any{"op": "add", "path": "/metadata/annotations/" + strings.ReplaceAll(v1alpha1.AnnotationStatus, "/", "~1"), "value": status})
		raw, err := json.Marshal(patch)
		if err != nil {
			w.mu.Unlock()
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		resp.Patch, resp.PatchType = raw, ptr.To(admissionv1.PatchTypeJSONPatch)
		if ours {
			if dryRun {
				w.log.add("dry-run %s", w.image)
			} else {
				w.log.add("create %s", w.image)
			}
		}
	}
	w.mu.Unlock()
	review.Response, review.Request = resp, nil
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(&review)
}

// runnerWebhook serves a runnerWebhook injecting image into the pods of
// namespace ns and registers it; it returns once a dry-run create of a pool
// pod in ns comes back injected.
func (x *poolEnv) runnerWebhook(t *testing.T, ns, poolName, image string, log *history) *runnerWebhook {
	t.Helper()
	w := &runnerWebhook{pool: poolName, log: log, image: image}
	srv := httptest.NewTLSServer(w)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "runner-" + ns},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "runner.sandbox.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To(srv.URL + "/mutate"), CABundle: ca},
			AdmissionReviewVersions: []string{"v1"},
			// As the chart's: the API server calls it for dry-run requests.
			SideEffects:   ptr.To(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: v1alpha1.LabelPool, Operator: metav1.LabelSelectorOpExists},
			}},
			TimeoutSeconds: ptr.To[int32](10),
		}},
	}
	if err := x.c.Create(t.Context(), mwc); err != nil {
		t.Fatalf("registering the runner webhook: %v", err)
	}
	// The API server's webhook client picks the configuration up shortly
	// after it is created.
	testenv.Eventually(t, 30*time.Second, "the runner webhook in effect", func() error {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: ns, Labels: map[string]string{v1alpha1.LabelPool: "probe"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "images.test/x"}}}}
		if err := x.c.Create(t.Context(), pod, client.DryRunAll); err != nil {
			return err
		}
		if got := pool.RunnerImage(pod); got != image {
			return fmt.Errorf("dry-run pod's runner %q", got)
		}
		return nil
	})
	return w
}

// watchPods records, in h, the creation ("created <pod> <runner>") and the
// deletion ("deleted <pod>") of the pool's pods on node; of the pods named
// in existing, only the deletion.
func (x *poolEnv) watchPods(t *testing.T, ns, poolName, node string, h *history, existing ...string) {
	t.Helper()
	wc, err := client.NewWithWatch(x.cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := wc.Watch(ctx, &corev1.PodList{}, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: pool.Selector(poolName)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		seen, gone := map[string]bool{}, map[string]bool{}
		for _, name := range existing {
			seen[name] = true
		}
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || pod.Spec.NodeName != node {
				continue
			}
			if !seen[pod.Name] {
				seen[pod.Name] = true
				h.add("created %s %s", pod.Name, pool.RunnerImage(pod))
			}
			if (ev.Type == watch.Deleted || pod.DeletionTimestamp != nil) && !gone[pod.Name] {
				gone[pod.Name] = true
				h.add("deleted %s", pod.Name)
			}
		}
	}()
	t.Cleanup(func() { w.Stop(); cancel(); <-done })
}

// markAllReady marks the pool's unready warm pods on node Ready, as the
// kubelet would, and returns the warm pods.
func (x *poolEnv) markAllReady(t *testing.T, ns, poolName, node string) []corev1.Pod {
	t.Helper()
	warm := x.pods(t, ns, poolName, node, v1alpha1.StateWarm)
	var unready []corev1.Pod
	for _, pod := range warm {
		if !pool.IsReady(&pod) {
			unready = append(unready, pod)
		}
	}
	x.markReady(t, unready)
	return warm
}

// index is the position of the first entry at or after from that has
// prefix, or -1.
func index(entries []string, from int, prefix string) int {
	for i := max(from, 0); i < len(entries); i++ {
		if strings.HasPrefix(entries[i], prefix) {
			return i
		}
	}
	return -1
}

// TestWarmPodsFollowTheWebhook: when the agents roll out before the
// webhook, the surge pod comes out with the old runner; the agent then
// asks the webhook, by dry-run creates a few seconds apart, which runner
// it injects, and replaces that pod as soon as the answer is the new
// runner, not after OutdatedRetry. A webhook that refuses the dry-run
// leaves OutdatedRetry as the fallback: the rollout still ends.
func TestWarmPodsFollowTheWebhook(t *testing.T) {
	x := startPoolEnv(t)
	const oldImage, newImage = "images.test/sandbox-runner:v1", "images.test/sandbox-runner:v2"

	// setUp starts a pool of 2 warm pods of the old runner on its own node
	// and namespace, with an agent of the old runner, then upgrades the
	// agent (retry: its OutdatedRetry) and returns it with the webhook,
	// the history (the pods of before the upgrade left out) and when the
	// agent was upgraded.
	setUp := func(t *testing.T, name string, refuseDryRun bool, retry time.Duration) (*agentRun, *runnerWebhook, *history, time.Time) {
		ns, node := name, "node-"+name
		x.namespace(t, ns)
		x.node(t, node, map[string]string{"pool-node": name})
		h := &history{}
		w := x.runnerWebhook(t, ns, "py", oldImage, h)
		w.mu.Lock()
		w.refuseDryRun = refuseDryRun
		w.mu.Unlock()
		old := x.startAgent(t, node, 5, func(c *PoolConfig) { c.RunnerImage = oldImage })
		x.pool(t, ns, "py", 2, func(p *v1alpha1.SandboxPool) { p.Spec.NodeSelector = map[string]string{"pool-node": name} })
		before := x.waitWarm(t, ns, "py", node, 2)
		x.markReady(t, before)
		x.waitCounts(t, old, ns, "py", node, 2, 2, 2, 0)
		old.stop()

		x.watchPods(t, ns, "py", node, h, podNames(before)...)
		// Creation timestamps are in whole seconds: let the surge pod be
		// younger than the pods it replaces, as it is in a real upgrade.
		time.Sleep(1100 * time.Millisecond)
		upgraded := time.Now()
		a := x.startAgent(t, node, 5, func(c *PoolConfig) {
			c.RunnerImage = newImage
			c.OutdatedRetry = retry
		})
		// Its surge pod comes out with the old runner: the webhook is
		// behind.
		testenv.Eventually(t, 30*time.Second, "a surge pod with the old runner", func() error {
			x.markAllReady(t, ns, "py", node)
			if n := len(x.pods(t, ns, "py", node, v1alpha1.StateWarm)); n < 3 {
				return fmt.Errorf("%d warm pods", n)
			}
			return nil
		})
		return a, w, h, upgraded
	}
	// finish plays the kubelet until the pool's warm pods all run the new
	// runner.
	finish := func(t *testing.T, a *agentRun, name string, timeout time.Duration) {
		ns, node := name, "node-"+name
		testenv.Eventually(t, timeout, "every warm pod on the new runner", func() error {
			warm := x.markAllReady(t, ns, "py", node)
			outdated := 0
			for _, pod := range warm {
				if pool.RunnerOutdated(&pod, newImage) {
					outdated++
				}
			}
			if len(warm) != 2 || outdated > 0 {
				return fmt.Errorf("%d warm pods, %d outdated", len(warm), outdated)
			}
			return nil
		})
		x.waitCounts(t, a, ns, "py", node, 2, 2, 2, 0)
	}
	probes := func(a *agentRun, ns, result string) int {
		return int(testutil.ToFloat64(a.metrics.RunnerProbes.WithLabelValues(ns, "py", result)))
	}

	t.Run("replaced once the dry-run shows the new runner", func(t *testing.T) {
		const name = "caught-up"
		// OutdatedRetry far beyond the test's bounds: only the dry-run can
		// make the agent try again in time.
		a, w, h, upgraded := setUp(t, name, false, time.Hour)
		// It asks the webhook, a few seconds apart, and hears the old
		// runner.
		testenv.Eventually(t, 60*time.Second, "two dry-runs answered with the old runner", func() error {
			if n := probes(a, name, string(InjectsOlder)); n < 2 {
				return fmt.Errorf("%d probes answered older", n)
			}
			return nil
		})
		// Then the webhook rolls out.
		w.setImage(newImage)
		switched := time.Now()
		probesBefore := w.dryRunCount()
		finish(t, a, name, 2*time.Minute)

		got := h.all()
		t.Logf("history:\n%s", strings.Join(got, "\n"))
		// The surge pod: the first pod the upgraded agent created, with the
		// old runner.
		created := index(got, 0, "created ")
		for created >= 0 && !strings.HasSuffix(got[created], " "+oldImage) {
			created = index(got, created+1, "created ")
		}
		if created < 0 {
			t.Fatal("no pod created with the old runner after the agent's upgrade")
		}
		surge := strings.Fields(got[created])[1]
		// In order: the webhook switches, a dry-run hears the new runner,
		// the surge pod goes, a pod of the new runner comes.
		switchAt := index(got, 0, "webhook now injects "+newImage)
		heard := index(got, switchAt, "dry-run "+newImage)
		deleted := index(got, switchAt, "deleted ")
		fresh := index(got, deleted, "created ")
		switch {
		case switchAt < 0 || heard < 0:
			t.Errorf("no dry-run answered with the new runner after the switch")
		case deleted < 0 || got[deleted] != "deleted "+surge:
			t.Errorf("the first pod deleted after the switch is not the surge pod %s", surge)
		case deleted < heard:
			t.Errorf("the surge pod %s deleted (entry %d) before a dry-run heard the new runner (entry %d)", surge, deleted, heard)
		case fresh < 0 || !strings.HasSuffix(got[fresh], " "+newImage):
			t.Errorf("no pod of the new runner created after the surge pod went")
		}
		if n := index(got, switchAt, "create "+oldImage); n >= 0 {
			t.Errorf("a pod came out with the old runner after the switch: entry %d", n)
		}
		if c := testutil.ToFloat64(a.metrics.Deleted.WithLabelValues(name, "py", DeleteRunnerOutdated)); c < 3 {
			t.Errorf("deleted{reason=%s} = %v, want at least 3 (the surge pod and the two old ones)", DeleteRunnerOutdated, c)
		}

		// Bounded: while behind, at most one dry-run per RunnerProbeInterval
		// (and one at the start); each one the agent made is counted.
		if limit := int(switched.Sub(upgraded)/RunnerProbeInterval) + 2; probesBefore > limit {
			t.Errorf("%d dry-runs in the %s the webhook was behind, want at most %d", probesBefore, switched.Sub(upgraded).Round(time.Second), limit)
		}
		total := probes(a, name, string(InjectsOlder)) + probes(a, name, string(InjectsCurrent)) + probes(a, name, probeError)
		if dry := w.dryRunCount(); total != dry || probes(a, name, string(InjectsCurrent)) < 1 {
			t.Errorf("the agent counted %d probes (%d current), the webhook answered %d dry-runs", total, probes(a, name, string(InjectsCurrent)), dry)
		}
		// Once the rollout is done the agent asks no more.
		time.Sleep(RunnerProbeInterval + time.Second)
		if dry := w.dryRunCount(); dry != total {
			t.Errorf("%d dry-runs after the rollout ended, %d when it ended", dry, total)
		}
	})

	t.Run("a refused dry-run leaves OutdatedRetry", func(t *testing.T) {
		const name = "refused"
		a, w, _, upgraded := setUp(t, name, true, 8*time.Second)
		testenv.Eventually(t, 60*time.Second, "a refused dry-run", func() error {
			if n := probes(a, name, probeError); n < 1 {
				return fmt.Errorf("%d probes failed", n)
			}
			return nil
		})
		w.setImage(newImage)
		finish(t, a, name, 2*time.Minute)
		ended := time.Now()
		if n := testutil.ToFloat64(a.metrics.Errors.WithLabelValues("probe")); n < 1 {
			t.Errorf("errors{op=probe} = %v, want the refused dry-runs counted", n)
		}
		if n := probes(a, name, string(InjectsCurrent)) + probes(a, name, string(InjectsOlder)); n != 0 {
			t.Errorf("%d probes answered, want none (the webhook refuses them)", n)
		}
		if dry, limit := w.dryRunCount(), int(ended.Sub(upgraded)/RunnerProbeInterval)+2; dry > limit {
			t.Errorf("%d dry-runs in %s, want at most %d: refusals must not make the agent loop", dry, ended.Sub(upgraded).Round(time.Second), limit)
		}
	})
}
