package pool

import (
	"encoding/json"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/runner/api"
)

// ClaimVerifierFlag is the runner flag by which the webhook gives a pool
// pod's runner its claim verifier.
const ClaimVerifierFlag = "--claim-verifier="

// ClaimVerifier is the claim verifier the webhook gave pod's runner (the
// one serving the container port named api.PortName), read from its
// command, which no one can change once the pod exists; "" when it has
// none.
func ClaimVerifier(pod *corev1.Pod) string {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name != api.PortName {
				continue
			}
			for _, arg := range c.Command {
				if v, ok := strings.CutPrefix(arg, ClaimVerifierFlag); ok {
					return v
				}
			}
			return ""
		}
	}
	return ""
}

// RunnerImage is the runner image the webhook injected into pod, as its
// sandbox.io/status annotation records it; "" when the annotation does not
// name one (a pod injected by a release before the field existed, or not
// injected at all).
func RunnerImage(pod *corev1.Pod) string {
	raw := pod.Annotations[v1alpha1.AnnotationStatus]
	if raw == "" {
		return ""
	}
	var st v1alpha1.InjectionStatus
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return ""
	}
	return st.RunnerImage
}

// RunnerOutdated reports whether pod runs another runner than current, the
// image the webhook injects now. A pod whose status names no runner image
// was injected by an earlier release and is outdated too. With current
// empty (not known) no pod is outdated.
func RunnerOutdated(pod *corev1.Pod, current string) bool {
	return current != "" && RunnerImage(pod) != current
}
