package pool

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"

	"sandbox.io/injector/api/v1alpha1"
)

// ConditionPodSecurity is the type of the pool condition that says which
// Pod Security Standards level the pool's pods meet: True when they meet
// restricted, False (reason PodSecurityBaseline or PodSecurityPrivileged)
// with what keeps them from it otherwise.
const ConditionPodSecurity = "PodSecurity"

// Reasons of the PodSecurity condition, one per level.
const (
	ReasonPodSecurityRestricted = "PodSecurityRestricted"
	ReasonPodSecurityBaseline   = "PodSecurityBaseline"
	ReasonPodSecurityPrivileged = "PodSecurityPrivileged"
)

// PodSecurity is the Pod Security Standards level a pool's pods meet.
type PodSecurity struct {
	// Level is the strictest level the pods pass: restricted, baseline or
	// privileged.
	Level psaapi.Level
	// Reasons say what keeps the pods from restricted (empty when Level is
	// restricted), in the API server's own words, such as
	// `runAsNonRoot != true (pod or container "sandbox" must set
	// securityContext.runAsNonRoot=true)`.
	Reasons []string
}

var (
	evaluatorOnce sync.Once
	evaluator     psapolicy.Evaluator
	evaluatorErr  error
)

// podSecurityEvaluator is the API server's own Pod Security evaluator, built
// once with the checks of this library version.
func podSecurityEvaluator() (psapolicy.Evaluator, error) {
	evaluatorOnce.Do(func() {
		evaluator, evaluatorErr = psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	})
	return evaluator, evaluatorErr
}

// PodSecurityLevel evaluates the pods the pool makes (a warm pod and a cold
// pod, as the Pod Security admission plugin of the API server would at the
// latest policy version) and returns the strictest level both pass, with
// the reasons they miss restricted.
//
// What the webhook adds when it injects the runner (an init container or an
// image volume, an emptyDir) meets restricted by design, so the level of the
// pod as built here is the level of the pod as it runs.
func PodSecurityLevel(p *v1alpha1.SandboxPool) (PodSecurity, error) {
	ev, err := podSecurityEvaluator()
	if err != nil {
		return PodSecurity{}, fmt.Errorf("building the pod security evaluator: %w", err)
	}
	pods := []*corev1.Pod{WarmPod(p, "node"), ColdPod(p)}
	// failures lists why the pods miss a level, each reason once.
	failures := func(level psaapi.Level) []string {
		var out []string
		lv := psaapi.LevelVersion{Level: level, Version: psaapi.LatestVersion()}
		for _, pod := range pods {
			agg := psapolicy.AggregateCheckResults(ev.EvaluatePod(lv, &pod.ObjectMeta, &pod.Spec))
			for i, r := range agg.ForbiddenReasons {
				if d := agg.ForbiddenDetails[i]; d != "" {
					r += " (" + d + ")"
				}
				if !slices.Contains(out, r) {
					out = append(out, r)
				}
			}
		}
		return out
	}
	restricted := failures(psaapi.LevelRestricted)
	if len(restricted) == 0 {
		return PodSecurity{Level: psaapi.LevelRestricted}, nil
	}
	if baseline := failures(psaapi.LevelBaseline); len(baseline) > 0 {
		// Below baseline: what breaks baseline first, then the rest of
		// what breaks restricted.
		for _, r := range restricted {
			if !slices.Contains(baseline, r) {
				baseline = append(baseline, r)
			}
		}
		return PodSecurity{Level: psaapi.LevelPrivileged, Reasons: baseline}, nil
	}
	return PodSecurity{Level: psaapi.LevelBaseline, Reasons: restricted}, nil
}

// PodSecurityCondition is the pool's PodSecurity condition (type
// ConditionPodSecurity) for the pool's current generation: True when its pods
// meet restricted, else False with the level they meet and why not
// restricted. kubectl describe shows it among the pool's conditions.
func PodSecurityCondition(p *v1alpha1.SandboxPool) metav1.Condition {
	c := metav1.Condition{Type: ConditionPodSecurity, ObservedGeneration: p.Generation}
	ps, err := PodSecurityLevel(p)
	switch {
	case err != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, "PodSecurityUnknown", err.Error()
	case ps.Level == psaapi.LevelRestricted:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonPodSecurityRestricted
		c.Message = "the pool's pods meet the Pod Security restricted level"
	default:
		c.Status = metav1.ConditionFalse
		c.Reason = ReasonPodSecurityBaseline
		if ps.Level == psaapi.LevelPrivileged {
			c.Reason = ReasonPodSecurityPrivileged
		}
		c.Message = fmt.Sprintf("the pool's pods meet the Pod Security %s level, not restricted: %s", ps.Level, strings.Join(ps.Reasons, ", "))
	}
	return c
}
