package agent

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/pool"
)

func testPool(perNode int32) *v1alpha1.SandboxPool {
	return &v1alpha1.SandboxPool{
		ObjectMeta: metav1.ObjectMeta{Name: "py", Namespace: "team", UID: "uid-1", Generation: 1},
		Spec: v1alpha1.SandboxPoolSpec{
			Template:    v1alpha1.SandboxTemplate{Image: "python:3.13"},
			PodsPerNode: ptr.To(perNode),
		},
	}
}

func testNode(labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// podOf is pool p's warm pod number i on node-a, created i seconds after
// epoch, shaped by the options.
func podOf(p *v1alpha1.SandboxPool, i int, opts ...func(*corev1.Pod)) corev1.Pod {
	pod := pool.WarmPod(p, "node-a")
	pod.Name = fmt.Sprintf("py-%d", i)
	pod.CreationTimestamp = metav1.NewTime(epoch.Add(time.Duration(i) * time.Second))
	for _, o := range opts {
		o(pod)
	}
	return *pod
}

func ready(pod *corev1.Pod) {
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
}
func phase(ph corev1.PodPhase) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func claimed(pod *corev1.Pod) { // taken by a claim: its controller, no label changed
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "SandboxClaim", Name: "c-" + pod.Name, UID: "claim-" + types.UID(pod.Name), Controller: ptr.To(true)}}
}
func claimedBefore(pod *corev1.Pod)     { pod.Labels[v1alpha1.LabelState] = v1alpha1.StateClaimed } // by an earlier controller
func stale(pod *corev1.Pod)             { pod.Labels[v1alpha1.LabelTemplateHash] = "0123456789" }
func deleting(pod *corev1.Pod)          { now := metav1.NewTime(epoch); pod.DeletionTimestamp = &now }
func onNode(n string) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Spec.NodeName = n } }

// runner records img as the pod's injected runner, as the webhook does.
func runner(img string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Annotations[v1alpha1.AnnotationStatus] = `{"state":"injected","runnerImage":"` + img + `"}`
	}
}

const (
	runnerV1 = "images.test/sandbox-runner:v1"
	runnerV2 = "images.test/sandbox-runner:v2"
)

var (
	oldRunner = runner(runnerV1)
	newRunner = runner(runnerV2)
)

// planNow is PlanInput.Now in TestPlanPool.
var planNow = epoch.Add(2 * time.Minute)

// answer is the webhook's answer to a dry-run create made ago before
// planNow, when the pool's pods on the node were pods.
func answer(injects Injects, ago time.Duration, pods ...string) WebhookAnswer {
	return WebhookAnswer{Injects: injects, At: planNow.Add(-ago), Pods: pods}
}

func inPool(n string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Labels[v1alpha1.LabelPool] = n }
}

func TestPlanPool(t *testing.T) {
	t.Parallel()
	p3 := testPool(3)
	selective := testPool(2)
	selective.Spec.NodeSelector = map[string]string{"sandbox.io/pool-node": "true"}
	tolerant := testPool(1)
	tolerant.Spec.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	gpuTaint := corev1.Taint{Key: "gpu", Value: "a100", Effect: corev1.TaintEffectNoSchedule}

	type want struct {
		eligible                 bool
		desired, warm, ready, cl int32
		create, short            int
		deleted                  []string // "name:reason", in plan order
		outdated                 int32
		behind, probe            bool
		recheck                  time.Duration
	}
	tests := []struct {
		name        string
		pool        *v1alpha1.SandboxPool
		node        *corev1.Node
		pods        []corev1.Pod
		unobserved  int
		deleted     map[string]bool
		maxStarting int
		stuckAfter  time.Duration
		runner      string
		retry       time.Duration
		webhook     WebhookAnswer
		want        want
	}{
		{name: "empty node is filled", pool: p3, node: testNode(nil), maxStarting: 5,
			want: want{eligible: true, desired: 3, create: 3}},
		{name: "full pool does nothing", pool: p3, node: testNode(nil), maxStarting: 5,
			pods: []corev1.Pod{podOf(p3, 1, ready), podOf(p3, 2, ready), podOf(p3, 3)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 2}},
		{name: "creations bounded by the starting pods", pool: testPool(10), node: testNode(nil), maxStarting: 4,
			pods: []corev1.Pod{podOf(testPool(10), 1), podOf(testPool(10), 2, ready)},
			want: want{eligible: true, desired: 10, warm: 2, ready: 1, create: 3, short: 5}},
		{name: "unobserved creations count as warm and starting", pool: p3, node: testNode(nil), maxStarting: 2, unobserved: 2,
			pods: []corev1.Pod{podOf(p3, 1, ready)},
			want: want{eligible: true, desired: 3, warm: 1, ready: 1}},
		{name: "zero batch size means one", pool: p3, node: testNode(nil),
			want: want{eligible: true, desired: 3, create: 1, short: 2}},
		{name: "surplus: not ready first, then newest", pool: p3, node: testNode(nil), maxStarting: 5,
			pods: []corev1.Pod{podOf(p3, 1, ready), podOf(p3, 2), podOf(p3, 3, ready), podOf(p3, 4, ready), podOf(p3, 5, ready)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 3, deleted: []string{"py-2:surplus", "py-5:surplus"}}},
		{name: "failed and succeeded are replaced", pool: p3, node: testNode(nil), maxStarting: 5,
			pods: []corev1.Pod{podOf(p3, 1, ready), podOf(p3, 2, phase(corev1.PodFailed)), podOf(p3, 3, phase(corev1.PodSucceeded))},
			want: want{eligible: true, desired: 3, warm: 1, ready: 1, create: 2, deleted: []string{"py-2:failed", "py-3:completed"}}},
		{name: "stale template is replaced", pool: p3, node: testNode(nil), maxStarting: 5,
			pods: []corev1.Pod{podOf(p3, 1, ready, stale), podOf(p3, 2, ready), podOf(p3, 3, ready, stale)},
			want: want{eligible: true, desired: 3, warm: 1, ready: 1, create: 2, deleted: []string{"py-1:stale", "py-3:stale"}}},
		{name: "claimed pods are counted, never touched, and refilled", pool: p3, node: testNode(nil), maxStarting: 5,
			pods: []corev1.Pod{podOf(p3, 1, ready, claimed), podOf(p3, 2, claimed, stale), podOf(p3, 3, claimedBefore, phase(corev1.PodFailed)), podOf(p3, 4, ready)},
			want: want{eligible: true, desired: 3, warm: 1, ready: 1, cl: 3, create: 2}},
		{name: "pods being deleted count as gone", pool: p3, node: testNode(nil), maxStarting: 5,
			pods: []corev1.Pod{podOf(p3, 1, ready, deleting), podOf(p3, 2, ready), podOf(p3, 3, ready, claimed, deleting)},
			want: want{eligible: true, desired: 3, warm: 1, ready: 1, create: 2}},
		{name: "pods the agent deleted count as gone", pool: p3, node: testNode(nil), maxStarting: 5, deleted: map[string]bool{"py-1": true},
			pods: []corev1.Pod{podOf(p3, 1, ready), podOf(p3, 2, ready), podOf(p3, 3, ready), podOf(p3, 4, ready)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 3}},
		{name: "other pools, nodes and states are ignored", pool: p3, node: testNode(nil), maxStarting: 5,
			pods: []corev1.Pod{podOf(p3, 1, ready, onNode("node-b")), podOf(p3, 2, ready, inPool("js")),
				podOf(p3, 3, func(p *corev1.Pod) { p.Labels[v1alpha1.LabelState] = "adopted" })},
			want: want{eligible: true, desired: 3, create: 3}},
		{name: "node selector does not match: nothing, and warm pods go", pool: selective, node: testNode(map[string]string{"other": "x"}), maxStarting: 5,
			pods: []corev1.Pod{podOf(selective, 1, ready), podOf(selective, 2, claimed)},
			want: want{cl: 1, deleted: []string{"py-1:ineligible"}}},
		{name: "node selector matches", pool: selective, node: testNode(map[string]string{"sandbox.io/pool-node": "true", "other": "x"}), maxStarting: 5,
			want: want{eligible: true, desired: 2, create: 2}},
		{name: "untolerated NoSchedule taint", pool: p3, node: testNode(nil, gpuTaint), maxStarting: 5,
			want: want{}},
		{name: "untolerated NoExecute taint", pool: tolerant, node: testNode(nil, gpuTaint, corev1.Taint{Key: "drain", Effect: corev1.TaintEffectNoExecute}), maxStarting: 5,
			want: want{}},
		{name: "tolerated taint and a mere preference", pool: tolerant, node: testNode(nil, gpuTaint, corev1.Taint{Key: "spot", Effect: corev1.TaintEffectPreferNoSchedule}), maxStarting: 5,
			want: want{eligible: true, desired: 1, create: 1}},
		{name: "a warm pod not Ready for too long is replaced", pool: p3, node: testNode(nil), maxStarting: 1, stuckAfter: time.Minute,
			pods: []corev1.Pod{podOf(p3, 1, ready), podOf(p3, 2, ready),
				// created 3 s after epoch, never Ready: stuck at epoch+63s
				podOf(p3, 3)},
			want: want{eligible: true, desired: 3, warm: 2, ready: 2, create: 1, deleted: []string{"py-3:stuck"}}},
		{name: "a warm pod that was Ready counts from when it stopped", pool: p3, node: testNode(nil), maxStarting: 1, stuckAfter: 2 * time.Minute,
			pods: []corev1.Pod{podOf(p3, 1, ready), podOf(p3, 2, ready), podOf(p3, 3, func(p *corev1.Pod) {
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(epoch.Add(time.Minute))}}
			})},
			want: want{eligible: true, desired: 3, warm: 3, ready: 2}},
		{name: "pool of zero deletes every warm pod", pool: testPool(0), node: testNode(nil), maxStarting: 5,
			pods: []corev1.Pod{podOf(testPool(0), 1, ready), podOf(testPool(0), 2)},
			want: want{eligible: true, deleted: []string{"py-2:surplus", "py-1:surplus"}}},

		// Runner upgrades: runnerV2 is current.
		{name: "runner not compared: older runners stay", pool: p3, node: testNode(nil), maxStarting: 5,
			pods: []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 3}},
		{name: "all current: nothing to do", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2,
			pods: []corev1.Pod{podOf(p3, 1, ready, newRunner), podOf(p3, 2, ready, newRunner), podOf(p3, 3, ready, newRunner)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 3}},
		{name: "outdated runner: surge first, one pod more, nothing deleted", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2,
			pods: []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready, oldRunner)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 3, outdated: 3, create: 1}},
		{name: "a pod of an earlier release names no runner: outdated", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2,
			pods: []corev1.Pod{podOf(p3, 1, ready), podOf(p3, 2, ready, newRunner), podOf(p3, 3, ready, newRunner)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 3, outdated: 1, create: 1}},
		{name: "surge created but not seen yet: wait", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, unobserved: 1,
			pods: []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready, oldRunner)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 3, outdated: 3}},
		{name: "fresh pod starting: no Ready outdated pod goes", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2,
			pods: []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready, oldRunner), podOf(p3, 4, newRunner)},
			want: want{eligible: true, desired: 3, warm: 4, ready: 3, outdated: 3}},
		{name: "fresh pod Ready: the oldest outdated goes and the next fresh one starts", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2,
			pods: []corev1.Pod{podOf(p3, 2, ready, oldRunner), podOf(p3, 1, ready, oldRunner), podOf(p3, 3, ready, oldRunner), podOf(p3, 4, ready, newRunner)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 3, outdated: 2, create: 1, deleted: []string{"py-1:runner-outdated"}}},
		{name: "last outdated goes: no more surge", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2,
			pods: []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, newRunner), podOf(p3, 3, ready, newRunner), podOf(p3, 4, ready, newRunner)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 3, deleted: []string{"py-1:runner-outdated"}}},
		{name: "pool of one keeps its Ready pod until the fresh one is Ready", pool: testPool(1), node: testNode(nil), maxStarting: 5, runner: runnerV2,
			pods: []corev1.Pod{podOf(testPool(1), 1, ready, oldRunner), podOf(testPool(1), 2, newRunner)},
			want: want{eligible: true, desired: 1, warm: 2, ready: 1, outdated: 1}},
		{name: "pool of one: fresh pod Ready, the outdated one goes", pool: testPool(1), node: testNode(nil), maxStarting: 5, runner: runnerV2,
			pods: []corev1.Pod{podOf(testPool(1), 1, ready, oldRunner), podOf(testPool(1), 2, ready, newRunner)},
			want: want{eligible: true, desired: 1, warm: 1, ready: 1, deleted: []string{"py-1:runner-outdated"}}},
		{name: "unready outdated pods go first, once one pod has the current runner", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2,
			pods: []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, oldRunner), podOf(p3, 3, oldRunner), podOf(p3, 4, newRunner)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 1, outdated: 2, create: 1, deleted: []string{"py-2:runner-outdated"}}},
		{name: "an unready outdated pod newer than every current one is kept, and the webhook asked (a webhook replica is behind)", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, retry: 5 * time.Minute,
			pods: []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, newRunner), podOf(p3, 3, newRunner), podOf(p3, 60, oldRunner)},
			want: want{eligible: true, desired: 3, warm: 4, ready: 2, outdated: 2, behind: true, probe: true, recheck: RunnerProbeInterval}},
		{name: "an unready outdated pod newer than every current one goes at once when the webhook answered current since", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, retry: 5 * time.Minute,
			webhook: answer(InjectsCurrent, time.Second, "py-1", "py-2", "py-3", "py-60"),
			pods:    []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, newRunner), podOf(p3, 3, newRunner), podOf(p3, 60, oldRunner)},
			want:    want{eligible: true, desired: 3, warm: 3, ready: 2, outdated: 1, behind: true, create: 1, deleted: []string{"py-60:runner-outdated"}}},
		{name: "an unready outdated pod newer than every current one goes after the retry", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, retry: time.Minute,
			pods: []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, newRunner), podOf(p3, 3, ready, newRunner), podOf(p3, 60, oldRunner)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 3, outdated: 1, behind: true, create: 1, deleted: []string{"py-60:runner-outdated"}}},
		{name: "claimed pods of an older runner are never touched", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2,
			pods: []corev1.Pod{podOf(p3, 1, ready, claimed, oldRunner), podOf(p3, 2, ready, newRunner), podOf(p3, 3, ready, newRunner), podOf(p3, 4, ready, newRunner)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 3, cl: 1}},
		{name: "surplus takes outdated pods before current ones", pool: testPool(2), node: testNode(nil), maxStarting: 5, runner: runnerV2,
			pods: []corev1.Pod{podOf(testPool(2), 1, ready, oldRunner), podOf(testPool(2), 2, ready, oldRunner), podOf(testPool(2), 3, ready, newRunner), podOf(testPool(2), 4, ready, newRunner), podOf(testPool(2), 5, ready, newRunner)},
			want: want{eligible: true, desired: 2, warm: 2, ready: 2, deleted: []string{"py-2:surplus", "py-1:surplus", "py-5:surplus"}}},
		{name: "webhook behind: the surge pod came out outdated, kept, and the webhook asked", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, retry: 5 * time.Minute,
			pods: []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready, oldRunner), podOf(p3, 60, ready, oldRunner)},
			want: want{eligible: true, desired: 3, warm: 4, ready: 4, outdated: 4, behind: true, probe: true, recheck: RunnerProbeInterval}},
		{name: "webhook behind: it answered older 2 s ago, asked again in 3 s", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, retry: 5 * time.Minute,
			webhook: answer(InjectsOlder, 2*time.Second, "py-1", "py-2", "py-3", "py-60"),
			pods:    []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready, oldRunner), podOf(p3, 60, ready, oldRunner)},
			want:    want{eligible: true, desired: 3, warm: 4, ready: 4, outdated: 4, behind: true, recheck: 3 * time.Second}},
		{name: "webhook behind: the dry-run failed 2 s ago (unknown), asked again in 3 s", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, retry: 5 * time.Minute,
			webhook: answer(InjectsUnknown, 2*time.Second, "py-1", "py-2", "py-3", "py-60"),
			pods:    []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready, oldRunner), podOf(p3, 60, ready, oldRunner)},
			want:    want{eligible: true, desired: 3, warm: 4, ready: 4, outdated: 4, behind: true, recheck: 3 * time.Second}},
		{name: "webhook behind: its answer is 10 s old, asked again", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, retry: 5 * time.Minute,
			webhook: answer(InjectsOlder, 10*time.Second, "py-1", "py-2", "py-3", "py-60"),
			pods:    []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready, oldRunner), podOf(p3, 60, ready, oldRunner)},
			want:    want{eligible: true, desired: 3, warm: 4, ready: 4, outdated: 4, behind: true, probe: true, recheck: RunnerProbeInterval}},
		{name: "webhook behind: an answer from the future (the clock moved back), asked again", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, retry: 5 * time.Minute,
			webhook: answer(InjectsOlder, -time.Hour, "py-1", "py-2", "py-3", "py-60"),
			pods:    []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready, oldRunner), podOf(p3, 60, ready, oldRunner)},
			want:    want{eligible: true, desired: 3, warm: 4, ready: 4, outdated: 4, behind: true, probe: true, recheck: RunnerProbeInterval}},
		{name: "webhook behind: the retry comes before the next probe", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, retry: 62 * time.Second,
			webhook: answer(InjectsOlder, time.Second, "py-1", "py-2", "py-3", "py-60"),
			pods:    []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready, oldRunner), podOf(p3, 60, ready, oldRunner)},
			want:    want{eligible: true, desired: 3, warm: 4, ready: 4, outdated: 4, behind: true, recheck: 2 * time.Second}},
		{name: "webhook caught up: it answered current since the surge pod came out, which goes at once", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, retry: 5 * time.Minute,
			webhook: answer(InjectsCurrent, time.Second, "py-1", "py-2", "py-3", "py-60"),
			pods:    []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready, oldRunner), podOf(p3, 60, ready, oldRunner)},
			want:    want{eligible: true, desired: 3, warm: 3, ready: 3, outdated: 3, behind: true, create: 1, deleted: []string{"py-60:runner-outdated"}}},
		{name: "webhook answered current before the surge pod came out outdated (a replica is behind): it waits, asked again in 4 s", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, retry: 5 * time.Minute,
			webhook: answer(InjectsCurrent, time.Second, "py-1", "py-2", "py-3", "py-59"),
			pods:    []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready, oldRunner), podOf(p3, 60, ready, oldRunner)},
			want:    want{eligible: true, desired: 3, warm: 4, ready: 4, outdated: 4, behind: true, recheck: 4 * time.Second}},
		{name: "webhook answered current, but the surge pod is still to be seen: nothing goes", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, retry: 5 * time.Minute, unobserved: 1,
			webhook: answer(InjectsCurrent, time.Second, "py-1", "py-2", "py-3"),
			pods:    []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready, oldRunner)},
			want:    want{eligible: true, desired: 3, warm: 3, ready: 3, outdated: 3}},
		{name: "webhook behind: after the retry the surge pod goes and another is tried", pool: p3, node: testNode(nil), maxStarting: 5, runner: runnerV2, retry: time.Minute,
			pods: []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, ready, oldRunner), podOf(p3, 60, ready, oldRunner)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 3, outdated: 3, behind: true, create: 1, deleted: []string{"py-60:runner-outdated"}}},
		{name: "ineligible node: outdated pods go as ineligible", pool: selective, node: testNode(nil), maxStarting: 5, runner: runnerV2,
			pods: []corev1.Pod{podOf(selective, 1, ready, oldRunner)},
			want: want{deleted: []string{"py-1:ineligible"}}},
		{name: "surge bounded by the starting pods", pool: p3, node: testNode(nil), maxStarting: 1, runner: runnerV2,
			pods: []corev1.Pod{podOf(p3, 1, ready, oldRunner), podOf(p3, 2, ready, oldRunner), podOf(p3, 3, newRunner)},
			want: want{eligible: true, desired: 3, warm: 3, ready: 2, outdated: 2, short: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan := PlanPool(PlanInput{Pool: tc.pool, Node: tc.node, Pods: tc.pods, Unobserved: tc.unobserved, Deleted: tc.deleted, MaxStarting: tc.maxStarting,
				StuckAfter: tc.stuckAfter, Now: planNow, Runner: tc.runner, OutdatedRetry: tc.retry, Webhook: tc.webhook})
			got := want{eligible: plan.Eligible, desired: plan.Desired, warm: plan.Warm, ready: plan.Ready, cl: plan.Claimed, create: plan.Create, short: plan.Short,
				outdated: plan.Outdated, behind: plan.RunnerBehind, probe: plan.ProbeWebhook, recheck: plan.RecheckAfter}
			for _, d := range plan.Delete {
				got.deleted = append(got.deleted, d.Pod.Name+":"+d.Reason)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if !plan.Eligible && plan.Why == "" {
				t.Error("not eligible, but no reason given")
			}
			// The input is not modified.
			for _, d := range plan.Delete {
				if !slices.ContainsFunc(tc.pods, func(p corev1.Pod) bool { return p.Name == d.Pod.Name }) {
					t.Errorf("deletes %s, which is not an input pod", d.Pod.Name)
				}
			}
		})
	}
}

func TestNodeEligibleSays(t *testing.T) {
	t.Parallel()
	p := testPool(1)
	p.Spec.NodeSelector = map[string]string{"zone": "a"}
	if ok, why := NodeEligible(p, testNode(map[string]string{"zone": "b"})); ok || why != "node selector does not match" {
		t.Errorf("selector: %v %q", ok, why)
	}
	p.Spec.NodeSelector = nil
	if ok, why := NodeEligible(p, testNode(nil, corev1.Taint{Key: "k", Value: "v", Effect: corev1.TaintEffectNoExecute})); ok || why != "taint k=v:NoExecute is not tolerated" {
		t.Errorf("taint: %v %q", ok, why)
	}
	if ok, _ := NodeEligible(p, nil); ok {
		t.Error("an unknown node is eligible")
	}
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "c"}}},
		}}},
	}}
	if ok, why := NodeEligible(p, testNode(map[string]string{"zone": "b"})); ok || why != "node affinity does not match" {
		t.Errorf("affinity: %v %q", ok, why)
	}
	if ok, why := NodeEligible(p, testNode(map[string]string{"zone": "c"})); !ok {
		t.Errorf("affinity matching zone c: not eligible: %s", why)
	}
}
