package inject

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"sandbox.io/injector/api/v1alpha1"
	runnerapi "sandbox.io/injector/runner/api"
	"sandbox.io/injector/runner/client"
)

// waitStatus polls a runner's /status until cond holds.
func waitStatus(t *testing.T, rc *client.Client, what string, timeout time.Duration, cond func(*runnerapi.Status) bool) *runnerapi.Status {
	t.Helper()
	var last *runnerapi.Status
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		st, err := rc.Status(ctx)
		if err != nil {
			return false, nil // the runner restarts nothing itself; a blip of the network is retried
		}
		last = st
		return cond(st), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v; last status %s", what, err, statusText(last))
	}
	return last
}

func statusText(st *runnerapi.Status) string {
	if st == nil {
		return "none"
	}
	if st.Child == nil {
		return fmt.Sprintf("healthy=%v, no child", st.Healthy)
	}
	c := st.Child
	return fmt.Sprintf("healthy=%v running=%v pid=%d restarts=%d last_exit=%+v next_start=%v",
		st.Healthy, c.Running, c.PID, c.Restarts, c.LastExit, c.NextStart)
}

// waitPod polls a pod until cond holds.
func (x *env) waitPod(t *testing.T, ns, name, what string, timeout time.Duration, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := x.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		pod = p
		return cond(p), nil
	})
	if err != nil {
		desc := ""
		if pod != nil {
			desc = describe(pod)
		}
		t.Fatalf("waiting for pod %s/%s %s: %v; %s", ns, name, what, err, desc)
	}
	return pod
}

// runnerMetrics reads a pod's runner /metrics with the test token.
func runnerMetrics(t *testing.T, pod *corev1.Pod) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
		fmt.Sprintf("http://%s:%d/metrics", pod.Status.PodIP, runnerapi.DefaultPort), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

func containerRestarts(p *corev1.Pod) int32 {
	var n int32
	for _, s := range p.Status.ContainerStatuses {
		n += s.RestartCount
	}
	return n
}

// TestLivenessProbeRestartsChildInPlace is pod-controller's own demo, for
// real: the child touches /tmp/health and sleeps, the runner's exec probe
// reads the file. Removing it through the runner API turns healthy false,
// the pod leaves Ready, the runner kills and restarts the child in place
// (the container is never restarted), and all is healthy and Ready again.
func TestLivenessProbeRestartsChildInPlace(t *testing.T) {
	x := requireE2E(t)
	ns := x.namespace(t, "liveness", nil)
	pod := busyboxPod(x, ns, "health", map[string]string{
		v1alpha1.AnnotationInject:        "true",
		v1alpha1.AnnotationLivenessProbe: `{"exec":{"command":["cat","/tmp/health"]},"periodSeconds":1,"failureThreshold":5}`,
	})
	pod.Spec.Containers[0].Command = []string{"sh", "-c", "touch /tmp/health && sleep 1000"}
	created, err := x.kube.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !injected(created) || !strings.Contains(strings.Join(created.Spec.Containers[0].Command, " "), "--liveness-probe=") {
		t.Fatalf("pod not injected with the probe: %q", created.Spec.Containers[0].Command)
	}
	ready := x.waitReady(t, ns, "health", 2*time.Minute)
	rc := runnerClient(ready, testToken)
	first := waitStatus(t, rc, "a healthy child", time.Minute, func(st *runnerapi.Status) bool {
		return st.Healthy && st.Child != nil && st.Child.Running
	})
	if first.Child.RestartPolicy != runnerapi.RestartAlways {
		t.Errorf("restart policy %q, want the pod's Always", first.Child.RestartPolicy)
	}

	res, err := rc.Execute(t.Context(), runnerapi.ExecuteRequest{Argv: []string{"rm", "/tmp/health"}})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("removing /tmp/health through the runner: %v %+v", err, res)
	}
	waitStatus(t, rc, "healthy false", time.Minute, func(st *runnerapi.Status) bool { return !st.Healthy })
	x.waitPod(t, ns, "health", "to leave Ready", time.Minute, func(p *corev1.Pod) bool { return !isReady(p) })

	st := waitStatus(t, rc, "the child restarted and healthy", 2*time.Minute, func(st *runnerapi.Status) bool {
		return st.Healthy && st.Child.Running && st.Child.Restarts == 1
	})
	if st.Child.PID == first.Child.PID || st.Child.LastExit == nil || st.Child.LastExit.Reason != runnerapi.ExitReasonLiveness {
		t.Errorf("after the restart: %s; want a new child after a liveness kill", statusText(st))
	}
	again := x.waitReady(t, ns, "health", 2*time.Minute)
	if again.UID != created.UID || containerRestarts(again) != 0 {
		t.Errorf("the pod was replaced or its container restarted (uid %s->%s, container restarts %d): the child must restart in place",
			created.UID, again.UID, containerRestarts(again))
	}
	if m := runnerMetrics(t, again); !strings.Contains(m, `sandbox_runner_child_restarts_total{reason="liveness"} 1`) ||
		!strings.Contains(m, "sandbox_runner_child_healthy 1") {
		t.Errorf("runner metrics lack the liveness restart or the healthy bit:\n%s", m)
	}
}

// TestCrashingDeploymentRestartsInPlace: an annotated Deployment whose app
// exits 1 is restarted in place by the runner (the pod's restartPolicy
// Always is its default) with the kubelet's growing back-off, visible in
// /status, and the pod is not Ready meanwhile, so a Service drops it.
func TestCrashingDeploymentRestartsInPlace(t *testing.T) {
	x := requireE2E(t)
	ns := x.namespace(t, "crash", nil)
	labels := map[string]string{"app": "crasher"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "crasher"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{v1alpha1.AnnotationInject: "true"}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To(int64(1)),
					Containers: []corev1.Container{{
						Name: "app", Image: x.testImage("busybox"), Command: []string{"sh", "-c", "echo up; exit 1"},
					}},
				},
			},
		},
	}
	if _, err := x.kube.AppsV1().Deployments(ns).Create(t.Context(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := x.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=crasher"})
		if err != nil || len(pods.Items) != 1 {
			return false, nil
		}
		pod = &pods.Items[0]
		return pod.Status.PodIP != "" && pod.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		t.Fatalf("waiting for the deployment's pod to run: %v", err)
	}
	if !injected(pod) {
		t.Fatalf("pod not injected: %q", pod.Spec.Containers[0].Command)
	}
	rc := runnerClient(pod, testToken)
	// Each back-off is seen while it lasts (1s and more; polled every 100ms).
	delays := map[int]time.Duration{}
	st := waitStatus(t, rc, "three restarts", 3*time.Minute, func(st *runnerapi.Status) bool {
		if c := st.Child; c != nil && !c.NextStart.IsZero() && !c.ExitedAt.IsZero() {
			delays[c.Restarts] = c.NextStart.Sub(c.ExitedAt)
		}
		return st.Child != nil && st.Child.Restarts >= 3 && len(delays) >= 3
	})
	for n, want := range map[int]time.Duration{0: time.Second, 1: 2 * time.Second, 2: 4 * time.Second} {
		if d, ok := delays[n]; ok && d != want {
			t.Errorf("back-off after %d restarts: %s, want %s (all seen: %v)", n, d, want, delays)
		}
	}
	if le := st.Child.LastExit; le == nil || le.Code != 1 || le.Reason != runnerapi.ExitReasonExited {
		t.Errorf("last exit %+v, want code 1, exited", le)
	}
	if st.Child.RestartPolicy != runnerapi.RestartAlways {
		t.Errorf("restart policy %q, want the pod's Always", st.Child.RestartPolicy)
	}
	now := x.waitPod(t, ns, pod.Name, "not Ready while crash looping", time.Minute, func(p *corev1.Pod) bool { return !isReady(p) })
	if now.UID != pod.UID || containerRestarts(now) != 0 {
		t.Errorf("the container was restarted %d times (uid %s->%s): the runner must restart its child in place", containerRestarts(now), pod.UID, now.UID)
	}
}
