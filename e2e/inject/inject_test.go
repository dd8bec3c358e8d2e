package inject

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"sandbox.io/injector/api/v1alpha1"
	runnerapi "sandbox.io/injector/runner/api"
	"sandbox.io/injector/runner/client"
	"sandbox.io/injector/webhook"
)

// runnerClient talks to a pod's runner directly at its pod IP (an address
// of the local cluster, on this machine).
func runnerClient(pod *corev1.Pod, token string) *client.Client {
	return client.New(fmt.Sprintf("http://%s:%d", pod.Status.PodIP, runnerapi.DefaultPort), token, nil)
}

// proxiedRunner talks to a pod's runner through the API server's pod proxy:
// the API server's credentials in Authorization, the runner's token in its
// own header.
func (x *env) proxiedRunner(t *testing.T, pod *corev1.Pod) *client.Client {
	t.Helper()
	hc, err := rest.HTTPClientFor(x.rest)
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s:%d/proxy",
		strings.TrimRight(x.rest.Host, "/"), pod.Namespace, pod.Name, runnerapi.DefaultPort), testToken, hc)
	c.ViaProxy = true
	return c
}

func injected(p *corev1.Pod) bool {
	return len(p.Spec.InitContainers) > 0 && p.Spec.InitContainers[0].Name == webhook.InitContainerName &&
		p.Annotations[v1alpha1.AnnotationStatus] != ""
}

func TestBusyboxPodIsInjectedAndDriven(t *testing.T) {
	x := requireE2E(t)
	ns := x.namespace(t, "busybox", nil)
	created, err := x.kube.CoreV1().Pods(ns).Create(t.Context(),
		busyboxPod(x, ns, "shell", map[string]string{v1alpha1.AnnotationInject: "true"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !injected(created) {
		t.Fatalf("pod not injected: %+v", created.Spec)
	}
	pod := x.waitReady(t, ns, "shell", 2*time.Minute)
	rc := runnerClient(pod, testToken)

	res, err := rc.Execute(t.Context(), runnerapi.ExecuteRequest{Shell: "echo hello from $(hostname)"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || res.Stdout != "hello from shell\n" {
		t.Errorf("execute: exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	if err := rc.PutFile(t.Context(), "e2e/data.txt", strings.NewReader("payload"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := rc.GetFile(t.Context(), "e2e/data.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r)
	_ = r.Close()
	if string(body) != "payload" {
		t.Errorf("file read back %q", body)
	}
	// The original command runs under the runner.
	st, err := rc.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Child == nil || !st.Child.Running || !slices.Contains(st.Child.Argv, "echo started; exec sleep 3600") {
		t.Errorf("status child %+v; want the pod's command running", st.Child)
	}
	// The same through the API server's pod proxy: the API server's own
	// credentials in Authorization, the runner's token in its own header.
	proxied := x.proxiedRunner(t, pod)
	res, err = proxied.Execute(t.Context(), runnerapi.ExecuteRequest{Argv: []string{"cat", "e2e/data.txt"}})
	if err != nil {
		t.Fatalf("execute through the API server's pod proxy: %v", err)
	}
	if res.Stdout != "payload" {
		t.Errorf("through the pod proxy: stdout %q", res.Stdout)
	}
	if _, err := proxied.List(t.Context(), "e2e"); err != nil {
		t.Errorf("files through the API server's pod proxy: %v", err)
	}
	// A wrong token is refused.
	if _, err := runnerClient(pod, "wrong").Execute(t.Context(), runnerapi.ExecuteRequest{Argv: []string{"true"}}); client.StatusCode(err) != 401 {
		t.Errorf("wrong token: err %v, want 401", err)
	}
}

func TestScratchImageEntrypointFromRegistry(t *testing.T) {
	x := requireE2E(t)
	ns := x.namespace(t, "scratch", nil)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Annotations: map[string]string{v1alpha1.AnnotationInject: "true"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers:                    []corev1.Container{{Name: "hello", Image: x.testImage("hello")}},
		},
	}
	created, err := x.kube.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !injected(created) {
		t.Fatal("scratch pod not injected")
	}
	cmd := created.Spec.Containers[0].Command
	if i := slices.Index(cmd, "--"); i < 0 || i == len(cmd)-1 {
		t.Fatalf("command %q: the image's ENTRYPOINT was not read from the registry (status %s)",
			cmd, created.Annotations[v1alpha1.AnnotationStatus])
	}
	ready := x.waitReady(t, ns, "hello", 2*time.Minute)
	st, err := runnerClient(ready, testToken).Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The hello image's ENTRYPOINT is /hello and its CMD "hello from the image cmd".
	want := []string{"/hello", "hello", "from", "the", "image", "cmd"}
	if st.Child == nil || !st.Child.Running || !slices.Equal(st.Child.Argv, want) {
		t.Errorf("scratch image's entrypoint is not running under the runner: %+v, want argv %q", st.Child, want)
	}
	// Files work in an image with no shell and no libc (read-only here:
	// the image's user may not write its root directory), also through the
	// API server's pod proxy.
	files, err := x.proxiedRunner(t, ready).List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(files, func(f runnerapi.FileInfo) bool { return f.Name == "hello" }) {
		t.Errorf("listing the scratch image's work directory: %+v, want its /hello binary", files)
	}
}

func TestNamespaceRules(t *testing.T) {
	x := requireE2E(t)
	enabled := x.namespace(t, "enabled", map[string]string{v1alpha1.LabelInject: v1alpha1.InjectEnabled})
	in, err := x.kube.CoreV1().Pods(enabled).Create(t.Context(), busyboxPod(x, enabled, "in", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !injected(in) {
		t.Error("pod in an enabled namespace was not injected")
	}
	out, err := x.kube.CoreV1().Pods(enabled).Create(t.Context(),
		busyboxPod(x, enabled, "out", map[string]string{v1alpha1.AnnotationInject: "false"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if injected(out) {
		t.Error("opted-out pod was injected")
	}
	for _, ns := range []string{"kube-system", releaseNS} {
		p, err := x.kube.CoreV1().Pods(ns).Create(t.Context(),
			busyboxPod(x, ns, "never", map[string]string{v1alpha1.AnnotationInject: "true"}),
			metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
		if injected(p) {
			t.Errorf("pod in %s was injected", ns)
		}
	}
}

func TestWrapModeJobExitCode(t *testing.T) {
	x := requireE2E(t)
	ns := x.namespace(t, "wrap", nil)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "exit3"},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To(int32(0)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
					v1alpha1.AnnotationInject: "true", v1alpha1.AnnotationMode: string(v1alpha1.ModeWrap),
				}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name: "job", Image: x.testImage("busybox"), Command: []string{"/bin/sh", "-c", "echo working; exit 3"},
					}},
				},
			},
		},
	}
	if _, err := x.kube.BatchV1().Jobs(ns).Create(t.Context(), job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var code int32 = -1
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := x.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=exit3"})
		if err != nil || len(pods.Items) == 0 {
			return false, nil
		}
		p := pods.Items[0]
		if !injected(&p) {
			return false, fmt.Errorf("job pod not injected")
		}
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Terminated != nil {
				code = s.State.Terminated.ExitCode
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting for the job's pod to end: %v", err)
	}
	if code != 3 {
		t.Errorf("container exit code %d, want 3 (the child's)", code)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := x.kube.BatchV1().Jobs(ns).Get(ctx, "exit3", metav1.GetOptions{})
		return err == nil && j.Status.Failed > 0, nil
	})
	if err != nil {
		t.Errorf("the Job did not report the failure: %v", err)
	}
}

func TestRestrictedNamespace(t *testing.T) {
	x := requireE2E(t)
	ns := x.namespace(t, "restricted", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	pod := busyboxPod(x, ns, "strict", map[string]string{v1alpha1.AnnotationInject: "true"})
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(1000)),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	if _, err := x.kube.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("restricted namespace refused the injected pod: %v", err)
	}
	ready := x.waitReady(t, ns, "strict", 2*time.Minute)
	res, err := runnerClient(ready, testToken).Execute(t.Context(), runnerapi.ExecuteRequest{Argv: []string{"id", "-u"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(res.Stdout) != "1000" {
		t.Errorf("command ran as %q, want the pod's user 1000", res.Stdout)
	}
}
