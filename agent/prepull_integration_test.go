package agent

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/testcri"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/internal/testregistry"
	"sandbox.io/injector/prepuller"
)

// occurrences is how many times an Event happened: the count of its
// series, or once.
func occurrences(e corev1.Event) int {
	if e.Series != nil {
		return int(e.Series.Count)
	}
	return 1
}

// ppImage is a small random linux image for this machine's architecture.
func ppImage(t *testing.T) v1.Image { return testregistry.RandomImage(t, 512, 1) }

// TestPrePullLoop runs the agent's pre-pull loop against a real containerd
// (pulling from loopback registries, one of them private) and a real API
// server: the ConfigMap's images, the runner image, a matching pool's
// private image (with its pull secret) and a learned pod's image are
// pulled; a pool for other nodes is not; a ConfigMap edit is pulled without
// restarting the loop; an image removed through the CRI comes back; a
// failing image and a malformed entry give Node Events naming the
// registry's error and the entry; the Node annotation carries the summary.
func TestPrePullLoop(t *testing.T) {
	reg := testregistry.New(t)
	private := testregistry.New(t, testregistry.WithBasicAuth("puller", "s3cret"))
	cri := testcri.Start(t, reg.Host, private.Host)
	cfg, c := testenv.StartWithCRDs(t)
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	listA := reg.Push(t, "list/a:v1", ppImage(t))
	listB := reg.Push(t, "list/b:v1", ppImage(t))
	listC := reg.Push(t, "list/c:v1", ppImage(t))
	runnerRef := reg.Push(t, "sandbox-runner:v1", ppImage(t))
	learnedRef := reg.Push(t, "learned/app:v1", ppImage(t))
	elsewhere := reg.Push(t, "pool/elsewhere:v1", ppImage(t))
	poolRef := private.Push(t, "pool/private:v1", ppImage(t))
	missing := reg.Host + "/list/missing:v1" // never pushed: the registry says not found

	must(c.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{"pool": "yes"}}}))
	for _, ns := range []string{"sbx", "team"} {
		must(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
		must(c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}))
	}
	must(c.Create(ctx, ppDockerSecret(t, "team", "regcred", private.Host, "puller", "s3cret")))
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "sbx", Name: "prepull"},
		Data:       map[string]string{ImageListKey: "# the chart's list\n" + listA + "\n" + listB + " sbx/absent\nnot a valid line\n" + missing + "\n"},
	}
	must(c.Create(ctx, cm))
	p := ppPool("team", "py", poolRef, map[string]string{"pool": "yes"}, "regcred")
	must(c.Create(ctx, &p))
	other := ppPool("team", "gpu", elsewhere, map[string]string{"pool": "gpu"})
	must(c.Create(ctx, &other))

	observer := NewPullObserver(cri.Images, nil)
	// The image filesystem reads as full while full is set (the real
	// statfs of containerd's root otherwise).
	var full atomic.Bool
	puller, err := prepuller.New(observer, prepuller.WithRegisterer(prometheus.NewRegistry()),
		prepuller.WithDiskThreshold(99.9), prepuller.WithBackoff(time.Hour, time.Hour, 0),
		prepuller.WithFsUsage(func(path string) (uint64, uint64, error) {
			used, capacity, err := prepuller.StatfsUsage(path)
			if full.Load() {
				used = capacity
			}
			return used, capacity, err
		}))
	must(err)
	list := types.NamespacedName{Namespace: "sbx", Name: "prepull"}
	pc, err := NewPrePullCache(cfg, PrePullCacheOptions{ImageList: list, Learn: true})
	must(err)
	promReg := prometheus.NewPedanticRegistry()
	loop, err := NewPrePuller(PrePullConfig{
		NodeName: "node-a", Puller: puller, Observer: observer, Client: c, Cache: pc,
		ImageList: list, RunnerImage: runnerRef, Learn: true,
		Interval: time.Second, Debounce: 100 * time.Millisecond, StatusInterval: 200 * time.Millisecond,
		Registerer: promReg, Log: testLog(),
	})
	must(err)
	mgr, err := manager.New(cfg, manager.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	must(err)
	must(loop.SetupWithManager(mgr))
	loopCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(loopCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("the agent's manager ended with %v", err)
		}
	})

	present := func(ref string) bool {
		t.Helper()
		resp, err := cri.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil {
			t.Fatalf("CRI ImageStatus %s: %v", ref, err)
		}
		return resp.GetImage() != nil
	}
	allPresent := func(refs ...string) func() error {
		return func() error {
			for _, r := range refs {
				if !present(r) {
					return fmt.Errorf("%s is not in the runtime", r)
				}
			}
			return nil
		}
	}
	events := func() []corev1.Event {
		t.Helper()
		var l corev1.EventList
		must(c.List(ctx, &l, client.InNamespace(metav1.NamespaceDefault)))
		var out []corev1.Event
		for _, e := range l.Items {
			if e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == "node-a" {
				out = append(out, e)
			}
		}
		return out
	}
	eventWith := func(reason, text string) func() error {
		return func() error {
			var seen []string
			for _, e := range events() {
				if e.Reason == reason && strings.Contains(e.Message, text) {
					if e.ReportingController != "sandbox-agent" || e.Type == "" || e.Action == "" {
						return fmt.Errorf("event %+v has no sandbox-agent reporting controller, type or action", e)
					}
					return nil
				}
				seen = append(seen, e.Reason+": "+e.Message)
			}
			return fmt.Errorf("no %s event containing %q among %q", reason, text, seen)
		}
	}
	annotation := func() string {
		t.Helper()
		var n corev1.Node
		must(c.Get(ctx, types.NamespacedName{Name: "node-a"}, &n))
		return n.Annotations[v1alpha1.AnnotationPrePull]
	}

	t.Run("the list, the runner, a matching pool with its pull secret", func(t *testing.T) {
		testenv.Eventually(t, 2*time.Minute, "the desired images in the runtime", allPresent(listA, listB, runnerRef, poolRef))
		if present(elsewhere) {
			t.Errorf("%s, the image of a pool for other nodes, was pulled", elsewhere)
		}
		testenv.Eventually(t, time.Minute, "an ImagePulled event", eventWith(ReasonImagePulled, "pulled image "+listA))
	})

	t.Run("a failing image and bad entries are reported on the Node", func(t *testing.T) {
		testenv.Eventually(t, time.Minute, "the registry's error in an event", eventWith(ReasonImagePullFailed, "pulling image "+missing+": "))
		for _, e := range events() {
			if e.Reason == ReasonImagePullFailed {
				t.Logf("event: %s", e.Message)
				if !strings.Contains(e.Message, "not found") {
					t.Errorf("failure event %q does not carry the registry's not found", e.Message)
				}
			}
		}
		testenv.Eventually(t, time.Minute, "the malformed entry in an event", eventWith(ReasonImageListInvalid, `line 4 "not a valid line"`))
		testenv.Eventually(t, time.Minute, "the unreadable secret in an event", eventWith(ReasonPullSecretUnreadable, "pull secret sbx/absent"))
		testenv.Eventually(t, time.Minute, "the summary annotation", func() error {
			if a := annotation(); !strings.HasPrefix(a, "present 4/5, failed 1 ("+missing) {
				return fmt.Errorf("annotation %q, want present 4/5 (list a, b, runner, pool) and the failed image", a)
			}
			return nil
		})
		// Several more syncs with the same failure: no new Events.
		before := len(events())
		syncs := testutil.ToFloat64(loop.metrics.syncs.WithLabelValues("ok"))
		testenv.Eventually(t, time.Minute, "three more syncs", func() error {
			if n := testutil.ToFloat64(loop.metrics.syncs.WithLabelValues("ok")); n < syncs+3 {
				return fmt.Errorf("%g syncs", n-syncs)
			}
			return nil
		})
		if after := len(events()); after != before {
			t.Errorf("%d events became %d over syncs that changed nothing: %+v", before, after, events()[before:])
		}
	})

	t.Run("an injected pod's image is learned", func(t *testing.T) {
		pod := ppInjectedPod("team", "learned", []string{learnedRef})
		pod.Spec.InitContainers = nil
		must(c.Create(ctx, &pod))
		testenv.Eventually(t, time.Minute, "the learned image in the runtime", allPresent(learnedRef))
	})

	t.Run("a ConfigMap edit is pulled without a restart", func(t *testing.T) {
		must(c.Get(ctx, list, cm))
		cm.Data[ImageListKey] = listC + "\n"
		must(c.Update(ctx, cm))
		testenv.Eventually(t, time.Minute, "the edited list's image in the runtime", allPresent(listC))
		testenv.Eventually(t, time.Minute, "the annotation without the dropped images", func() error {
			if a := annotation(); a != "present 4/4" {
				return fmt.Errorf("annotation %q, want present 4/4 (list c, runner, pool, learned)", a)
			}
			return nil
		})
	})

	t.Run("an image removed through the CRI comes back", func(t *testing.T) {
		_, err := cri.Images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: listC}})
		must(err)
		if present(listC) {
			t.Fatal("the image is still there after RemoveImage")
		}
		testenv.Eventually(t, time.Minute, "the removed image back in the runtime", allPresent(listC))
		// The pull back is the first pull's Event again: the recorder
		// makes it a series of two.
		testenv.Eventually(t, time.Minute, "an event for the pull back", func() error {
			n := 0
			for _, e := range events() {
				if e.Reason == ReasonImagePulled && strings.Contains(e.Message, listC) {
					n += occurrences(e)
				}
			}
			if n < 2 {
				return fmt.Errorf("%d ImagePulled events for %s, want 2 (first pull, pull back)", n, listC)
			}
			return nil
		})
	})

	t.Run("pulls pause while the image filesystem is full, and say so", func(t *testing.T) {
		late := reg.Push(t, "list/late:v1", ppImage(t))
		full.Store(true)
		must(c.Get(ctx, list, cm))
		cm.Data[ImageListKey] = listC + "\n" + late + "\n"
		must(c.Update(ctx, cm))
		testenv.Eventually(t, time.Minute, "a pause event", eventWith(ReasonImagePullsPaused, "above the 99.9% threshold"))
		testenv.Eventually(t, time.Minute, "the pause in the annotation", func() error {
			if a := annotation(); !strings.HasPrefix(a, "present 4/5, paused 1") || !strings.Contains(a, "; paused: image filesystem ") {
				return fmt.Errorf("annotation %q, want present 4/5, paused 1 and why", a)
			}
			return nil
		})
		if present(late) {
			t.Fatalf("%s was pulled while the image filesystem was full", late)
		}
		full.Store(false)
		testenv.Eventually(t, time.Minute, "the waiting image pulled once there is room", allPresent(late))
		testenv.Eventually(t, time.Minute, "a resume event", eventWith(ReasonImagePullsResumed, "image pulls resumed"))
	})

	t.Run("metrics", func(t *testing.T) {
		if n, err := testutil.GatherAndCount(promReg, "sandbox_agent_prepull_events_total"); err != nil || n < 3 {
			t.Errorf("events_total series %d (%v), want one per reason recorded", n, err)
		}
		if got := testutil.ToFloat64(loop.metrics.learned); got != 1 {
			t.Errorf("learned_images = %g, want 1", got)
		}
	})
}
