package inject

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// podHistory records, from a watch, what happened to each pod of a
// namespace: the upgrade proof prints the story of a lost claim's pod.
type podHistory struct {
	mu    sync.Mutex
	start time.Time
	pods  map[string][]string
}

// podHistoryMax bounds the lines kept per pod.
const podHistoryMax = 40

// watchPodHistory records the pods of ns until ctx is done; a watch that
// ends is opened again (what happened in between is missed).
func watchPodHistory(ctx context.Context, kube kubernetes.Interface, ns string) *podHistory {
	h := &podHistory{start: time.Now(), pods: map[string][]string{}}
	go func() {
		for ctx.Err() == nil {
			w, err := kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
			if err != nil {
				time.Sleep(time.Second)
				continue
			}
			for ev := range w.ResultChan() {
				if pod, ok := ev.Object.(*corev1.Pod); ok {
					h.add(string(ev.Type), pod)
				}
			}
			w.Stop()
		}
	}()
	return h
}

func (h *podHistory) add(event string, pod *corev1.Pod) {
	owner := "none"
	if ref := metav1.GetControllerOf(pod); ref != nil {
		owner = ref.Kind + "/" + ref.Name
	}
	deleting := "-"
	if pod.DeletionTimestamp != nil {
		deleting = "since " + pod.DeletionTimestamp.Format("15:04:05")
	}
	line := fmt.Sprintf("%8.3fs %-8s rv=%s state=%s owner=%s deleting=%s phase=%s ready=%v runner=%s",
		time.Since(h.start).Seconds(), event, pod.ResourceVersion, pod.Labels["sandbox.io/state"], owner, deleting,
		pod.Status.Phase, isReady(pod), runnerImageOf(pod))
	h.mu.Lock()
	defer h.mu.Unlock()
	if lines := h.pods[pod.Name]; len(lines) < podHistoryMax {
		h.pods[pod.Name] = append(lines, line)
	}
}

// story is what the watch saw of the pod name, a line an event.
func (h *podHistory) story(name string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	lines := h.pods[name]
	if len(lines) == 0 {
		return "      (no event seen)\n"
	}
	return "      " + strings.Join(lines, "\n      ") + "\n"
}
