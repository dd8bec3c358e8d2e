package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/pool"
)

// standInWebhook plays the webhook's part that the agent reads: a
// MutatingAdmissionPolicy that writes sandbox.io/status, naming image as
// the injected runner, into every pool pod created in namespace ns.
// Calling it again "upgrades the webhook" to another image.
func (x *poolEnv) standInWebhook(t *testing.T, ns, image string) {
	t.Helper()
	status := fmt.Sprintf(`{"state":"injected","runnerImage":%q}`, image)
	expr := fmt.Sprintf(`Object{metadata: Object.metadata{annotations: {%q: %q}}}`, v1alpha1.AnnotationStatus, status)
	name := "stand-in-webhook-" + ns
	policy := &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				}}},
			},
			MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "pool-pod",
				Expression: fmt.Sprintf(`has(object.metadata.labels) && %q in object.metadata.labels`, v1alpha1.LabelPool)}},
			FailurePolicy:      ptr.To(admissionregistrationv1.Fail),
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType:          admissionregistrationv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{Expression: expr},
			}},
		},
	}
	var existing admissionregistrationv1.MutatingAdmissionPolicy
	switch err := x.c.Get(t.Context(), client.ObjectKey{Name: name}, &existing); {
	case apierrors.IsNotFound(err):
		if err := x.c.Create(t.Context(), policy); err != nil {
			t.Fatalf("creating the stand-in webhook: %v", err)
		}
		binding := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: name},
		}
		if err := x.c.Create(t.Context(), binding); err != nil {
			t.Fatalf("binding the stand-in webhook: %v", err)
		}
	case err != nil:
		t.Fatal(err)
	default:
		existing.Spec = policy.Spec
		if err := x.c.Update(t.Context(), &existing); err != nil {
			t.Fatalf("upgrading the stand-in webhook: %v", err)
		}
	}
}

// readyWatch follows a namespace's pods through a watch, in the API
// server's order, and remembers whether the pool ever had no Ready warm
// pod (on the node) once it had one.
type readyWatch struct {
	mu       sync.Mutex
	ready    map[string]bool
	everHad  bool
	droppedT []string // when it dropped to none, and after which event
}

func (x *poolEnv) watchReady(t *testing.T, ns, poolName, node string) *readyWatch {
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
	rw := &readyWatch{ready: map[string]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || pod.Spec.NodeName != node {
				continue
			}
			rw.mu.Lock()
			isReady := ev.Type != watch.Deleted && pod.DeletionTimestamp == nil &&
				pool.State(pod) == v1alpha1.StateWarm && pool.IsReady(pod)
			had := len(rw.ready) > 0
			if isReady {
				rw.ready[pod.Name] = true
				rw.everHad = true
			} else {
				delete(rw.ready, pod.Name)
			}
			if had && len(rw.ready) == 0 {
				rw.droppedT = append(rw.droppedT, fmt.Sprintf("%s %s", ev.Type, pod.Name))
			}
			rw.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.Stop(); cancel(); <-done })
	return rw
}

func (rw *readyWatch) drops() []string {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return append([]string(nil), rw.droppedT...)
}

// TestWarmPodsFollowTheRunner: a pool's warm pods move to a new runner
// image after an upgrade, one at a time and surge first, with a Ready warm
// pod at every moment; a claimed pod keeps its runner. The agent is
// upgraded before the webhook, as a DaemonSet may roll out before a
// Deployment: its first replacement comes out with the old runner, and it
// waits and tries again once the webhook injects the new one.
func TestWarmPodsFollowTheRunner(t *testing.T) {
	x := startPoolEnv(t)
	const ns, node = "rollout", "node-rollout"
	const oldImage, newImage = "images.test/sandbox-runner:v1", "images.test/sandbox-runner:v2"
	x.namespace(t, ns)
	x.node(t, node, nil)
	x.standInWebhook(t, ns, oldImage)
	// The admission plugin sees a new policy within a moment; until then a
	// pod would be created without a status.
	testenv.Eventually(t, 30*time.Second, "the stand-in webhook in effect", func() error {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: ns, Labels: map[string]string{v1alpha1.LabelPool: "probe"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "images.test/x"}}}}
		if err := x.c.Create(t.Context(), pod, client.DryRunAll); err != nil {
			return err
		}
		if pool.RunnerImage(pod) != oldImage {
			return fmt.Errorf("status %q", pod.Annotations[v1alpha1.AnnotationStatus])
		}
		return nil
	})

	old := x.startAgent(t, node, 5, func(c *PoolConfig) { c.RunnerImage = oldImage })
	x.pool(t, ns, "py", 3)
	pods := x.waitWarm(t, ns, "py", node, 3)
	x.markReady(t, pods)
	x.waitCounts(t, old, ns, "py", node, 3, 3, 3, 0)
	x.claim(t, pods[0])
	pods = x.waitWarm(t, ns, "py", node, 3)
	x.markReady(t, pods)
	x.waitCounts(t, old, ns, "py", node, 3, 3, 3, 1)
	claimedPod := x.pods(t, ns, "py", node, v1alpha1.StateClaimed)[0]
	for _, pod := range x.pods(t, ns, "py", node, v1alpha1.StateWarm) {
		if got := pool.RunnerImage(&pod); got != oldImage {
			t.Fatalf("warm pod %s runner %q before the upgrade, want %s", pod.Name, got, oldImage)
		}
	}

	rw := x.watchReady(t, ns, "py", node)
	// The upgrade: the agent first, with the new runner image.
	old.stop()
	a := x.startAgent(t, node, 5, func(c *PoolConfig) {
		c.RunnerImage = newImage
		c.OutdatedRetry = 2 * time.Second
	})
	// Its surge pod comes out with the old runner: the webhook is behind.
	testenv.Eventually(t, 30*time.Second, "a surge pod with the old runner, and a RunnerBehind event", func() error {
		if n := len(x.pods(t, ns, "py", node, v1alpha1.StateWarm)); n < 4 {
			return fmt.Errorf("%d warm pods", n)
		}
		var events corev1.EventList
		if err := x.c.List(t.Context(), &events, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == ReasonRunnerBehind && strings.Contains(e.Message, newImage) {
				return nil
			}
		}
		return fmt.Errorf("no %s event among %d", ReasonRunnerBehind, len(events.Items))
	})
	// Then the webhook: from now on pods get the new runner.
	x.standInWebhook(t, ns, newImage)

	// The kubelet's part: every warm pod becomes Ready soon after it is
	// created, until all run the new runner.
	testenv.Eventually(t, 90*time.Second, "every warm pod on the new runner", func() error {
		warm := x.pods(t, ns, "py", node, v1alpha1.StateWarm)
		var unready []corev1.Pod
		outdated := 0
		for _, pod := range warm {
			if !pool.IsReady(&pod) {
				unready = append(unready, pod)
			}
			if pool.RunnerOutdated(&pod, newImage) {
				outdated++
			}
		}
		x.markReady(t, unready)
		if len(warm) != 3 || outdated > 0 || len(unready) > 0 {
			return fmt.Errorf("%d warm pods, %d outdated, %d not Ready", len(warm), outdated, len(unready))
		}
		return nil
	})
	x.waitCounts(t, a, ns, "py", node, 3, 3, 3, 1)
	if got := gauge(a.metrics, ns, "py", node, "outdated"); got != 0 {
		t.Errorf("outdated gauge %v after the rollout, want 0", got)
	}
	if d := rw.drops(); len(d) > 0 {
		t.Errorf("the pool had no Ready warm pod on the node during the rollout, after: %v", d)
	}
	if !rw.everHad {
		t.Error("the watch saw no Ready warm pod at all")
	}
	// The three warm pods of the old runner (and the surge pods that came
	// out old), counted by reason.
	if got := testutil.ToFloat64(a.metrics.Deleted.WithLabelValues(ns, "py", DeleteRunnerOutdated)); got < 3 {
		t.Errorf("deleted{reason=%s} = %v, want at least 3", DeleteRunnerOutdated, got)
	}
	var still corev1.Pod
	if err := x.c.Get(t.Context(), client.ObjectKeyFromObject(&claimedPod), &still); err != nil || still.DeletionTimestamp != nil {
		t.Fatalf("the claimed pod was touched by the rollout: %v %v", err, still.DeletionTimestamp)
	}
	if got := pool.RunnerImage(&still); got != oldImage {
		t.Errorf("the claimed pod's runner %q, want it kept at %s", got, oldImage)
	}
}
