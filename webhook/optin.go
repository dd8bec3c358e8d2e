package webhook

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"sandbox.io/injector/api/v1alpha1"
)

// Decision says whether a pod is to be injected, and why.
type Decision struct {
	// Inject is true when the pod is to be mutated.
	Inject bool
	// ByAnnotation is true when the pod asked for injection itself (rather
	// than only through its namespace's label).
	ByAnnotation bool
	// Reason is a short explanation, for the admission result and the logs.
	Reason string
	// Warnings are shown to the user (kubectl prints them) even when the
	// pod is admitted unchanged.
	Warnings []string
}

// Decide applies the opt-in rules of the annotation contract to a pod in
// namespace ns, whose labels are nsLabels (nil when unknown). cfg must be
// completed. It returns a Refusal when the pod's sandbox.io/inject
// annotation is malformed, or when the pod asks for injection by its own
// annotation but cannot safely be injected (hostNetwork, Windows).
//
// The webhook configuration's selectors only pre-filter; this function is
// the rule, so a hand-written configuration never injects a pod that did
// not opt in.
func Decide(pod *corev1.Pod, ns string, nsLabels map[string]string, cfg *Config) (Decision, error) {
	if contains(cfg.ExcludedNamespaces, ns) {
		return Decision{Reason: fmt.Sprintf("namespace %s is excluded", ns)}, nil
	}
	podValue, podHas := pod.Annotations[v1alpha1.AnnotationInject]
	if podHas && podValue != v1alpha1.InjectTrue && podValue != v1alpha1.InjectFalse {
		return Decision{}, refuse("annotation "+v1alpha1.AnnotationInject,
			"value %q is not allowed; use %q or %q", podValue, v1alpha1.InjectTrue, v1alpha1.InjectFalse)
	}
	nsValue, nsHas := nsLabels[v1alpha1.LabelInject]
	var warnings []string
	if nsHas && nsValue != v1alpha1.InjectEnabled && nsValue != v1alpha1.InjectDisabled {
		warnings = append(warnings, fmt.Sprintf("namespace %s: label %s=%q is not %q or %q and is ignored",
			ns, v1alpha1.LabelInject, nsValue, v1alpha1.InjectEnabled, v1alpha1.InjectDisabled))
		nsHas = false
	}

	switch {
	case podValue == v1alpha1.InjectFalse:
		return Decision{Reason: "pod opted out", Warnings: warnings}, nil
	case nsHas && nsValue == v1alpha1.InjectDisabled:
		if podValue == v1alpha1.InjectTrue {
			warnings = append(warnings, fmt.Sprintf("pod asks for %s=true but namespace %s has %s=%s: not injected",
				v1alpha1.AnnotationInject, ns, v1alpha1.LabelInject, v1alpha1.InjectDisabled))
		}
		return Decision{Reason: "namespace disabled", Warnings: warnings}, nil
	case podValue == v1alpha1.InjectTrue:
		if reason := unsafeReason(pod); reason != "" {
			return Decision{}, refuse("annotation "+v1alpha1.AnnotationInject, "%s", reason)
		}
		return Decision{Inject: true, ByAnnotation: true, Reason: "pod annotation", Warnings: warnings}, nil
	case nsHas && nsValue == v1alpha1.InjectEnabled:
		if reason := unsafeReason(pod); reason != "" {
			// Like Istio: a pod that did not ask itself is left alone.
			return Decision{Reason: "not injectable: " + reason, Warnings: warnings}, nil
		}
		return Decision{Inject: true, Reason: "namespace label", Warnings: warnings}, nil
	default:
		return Decision{Reason: "not opted in", Warnings: warnings}, nil
	}
}

// unsafeReason says why a pod cannot get a runner, or "" when it can.
func unsafeReason(pod *corev1.Pod) string {
	if pod.Spec.HostNetwork {
		return "the pod uses hostNetwork, so the runner's API port would open on the node itself; sandboxes need the pod network"
	}
	if pod.Spec.OS != nil && pod.Spec.OS.Name == corev1.Windows ||
		strings.EqualFold(pod.Spec.NodeSelector[corev1.LabelOSStable], string(corev1.Windows)) {
		return "the pod runs on Windows; the runner is a Linux binary"
	}
	return ""
}
