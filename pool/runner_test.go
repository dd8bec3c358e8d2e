package pool_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/pool"
)

func TestRunnerOutdated(t *testing.T) {
	t.Parallel()
	const current = "images.test/sandbox-runner:v2"
	tests := []struct {
		name     string
		status   string
		current  string
		image    string
		outdated bool
	}{
		{name: "current", status: `{"state":"injected","runnerImage":"images.test/sandbox-runner:v2"}`, current: current, image: current},
		{name: "older image", status: `{"state":"injected","runnerImage":"images.test/sandbox-runner:v1"}`, current: current, image: "images.test/sandbox-runner:v1", outdated: true},
		{name: "earlier release names no image", status: `{"state":"injected","runnerVersion":"v1"}`, current: current, outdated: true},
		{name: "no annotation", current: current, outdated: true},
		{name: "malformed annotation", status: `{`, current: current, outdated: true},
		{name: "current unknown", status: `{"state":"injected","runnerImage":"images.test/sandbox-runner:v1"}`, image: "images.test/sandbox-runner:v1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}}
			if tc.status != "" {
				pod.Annotations[v1alpha1.AnnotationStatus] = tc.status
			}
			if got := pool.RunnerImage(pod); got != tc.image {
				t.Errorf("RunnerImage = %q, want %q", got, tc.image)
			}
			if got := pool.RunnerOutdated(pod, tc.current); got != tc.outdated {
				t.Errorf("RunnerOutdated = %v, want %v", got, tc.outdated)
			}
		})
	}
}
