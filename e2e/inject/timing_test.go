package inject

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"sandbox.io/injector/api/v1alpha1"
)

// TestStartupLatency creates the same busybox pod uninjected and injected,
// one at a time with its image present, and prints creation-to-Ready p50
// and p90 of each and their ratio. It reports; it does not judge speed.
func TestStartupLatency(t *testing.T) {
	x := requireE2E(t)
	n := 20
	if v, err := strconv.Atoi(os.Getenv("SANDBOX_E2E_TIMING_PODS")); err == nil && v > 0 {
		n = v
	}
	ns := x.namespace(t, "timing", nil)
	measure := func(kind string, annotations map[string]string) []time.Duration {
		var out []time.Duration
		for i := range n {
			name := fmt.Sprintf("%s-%d", kind, i)
			d, err := x.createToReady(t.Context(), ns, busyboxPod(x, ns, name, annotations))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			out = append(out, d)
			_ = x.kube.CoreV1().Pods(ns).Delete(t.Context(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
		}
		return out
	}
	// One of each first, so that both images are present on the node.
	measureWarm := func(kind string, annotations map[string]string) {
		if _, err := x.createToReady(t.Context(), ns, busyboxPod(x, ns, kind+"-warm", annotations)); err != nil {
			t.Fatal(err)
		}
	}
	opted := map[string]string{v1alpha1.AnnotationInject: "true"}
	measureWarm("plain", nil)
	measureWarm("injected", opted)
	plain := measure("plain", nil)
	injected := measure("injected", opted)
	// The same with the nodes labelled as supporting image volumes: the
	// runner image is mounted instead of copied.
	x.labelNodes(t.Context(), t, "true")
	t.Cleanup(func() { x.labelNodes(context.Background(), t, "") })
	measureWarm("volume", opted)
	volume := measure("volume", opted)
	p := func(d []time.Duration, q float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[int(float64(len(s)-1)*q)]
	}
	fmt.Printf("\nPod creation to Ready, images present, %d pods each\n", n)
	fmt.Printf("%-10s %10s %10s\n", "pod", "p50", "p90")
	fmt.Printf("%-10s %10s %10s\n", "plain", p(plain, .5).Round(time.Millisecond), p(plain, .9).Round(time.Millisecond))
	fmt.Printf("%-10s %10s %10s\n", "copy", p(injected, .5).Round(time.Millisecond), p(injected, .9).Round(time.Millisecond))
	fmt.Printf("%-10s %10s %10s\n", "imgvolume", p(volume, .5).Round(time.Millisecond), p(volume, .9).Round(time.Millisecond))
	fmt.Printf("ratio p50 copy/plain: %.2fx, image volume/plain: %.2fx (image volume p50 - plain p50 = %s)\n",
		float64(p(injected, .5))/float64(p(plain, .5)), float64(p(volume, .5))/float64(p(plain, .5)),
		(p(volume, .5) - p(plain, .5)).Round(time.Millisecond))
}

// createToReady creates pod and returns the time until a watch sees it Ready.
func (x *env) createToReady(ctx context.Context, ns string, pod *corev1.Pod) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	w, err := x.kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", pod.Name).String()})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	start := time.Now()
	if _, err := x.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	for ev := range w.ResultChan() {
		if ev.Type == watch.Error {
			break // fall back to polling below
		}
		if p, ok := ev.Object.(*corev1.Pod); ok && isReady(p) {
			return time.Since(start), nil
		}
	}
	// The watch ended early (the server closes watches now and then): poll.
	for ctx.Err() == nil {
		p, err := x.kube.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err == nil && isReady(p) {
			return time.Since(start), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("pod %s not Ready: %w", pod.Name, ctx.Err())
}
