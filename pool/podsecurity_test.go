package pool

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"

	"sandbox.io/injector/api/v1alpha1"
)

func TestPodSecurityLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(t *v1alpha1.SandboxPool)
		level   psaapi.Level
		reasons []string // each must appear in some reason
	}{{
		name:    "defaults keep the image's user: baseline, runAsNonRoot missing",
		change:  func(*v1alpha1.SandboxPool) {},
		level:   psaapi.LevelBaseline,
		reasons: []string{"runAsNonRoot != true"},
	}, {
		name: "a non-root user with the defaults: restricted",
		change: func(p *v1alpha1.SandboxPool) {
			p.Spec.Template.PodSecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
			p.Spec.Template.WorkDir = &v1alpha1.WorkDir{SizeLimit: resourceMust("1Gi")}
			p.Spec.Template.RuntimeClassName = ptr.To("gvisor")
		},
		level: psaapi.LevelRestricted,
	}, {
		name: "a container securityContext that keeps capabilities: baseline",
		change: func(p *v1alpha1.SandboxPool) {
			p.Spec.Template.PodSecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
			p.Spec.Template.SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"CHOWN"}}}
		},
		level:   psaapi.LevelBaseline,
		reasons: []string{"unrestricted capabilities"},
	}, {
		name: "privileged: below baseline",
		change: func(p *v1alpha1.SandboxPool) {
			p.Spec.Template.SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		},
		level:   psaapi.LevelPrivileged,
		reasons: []string{"privileged", "runAsNonRoot != true"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := testPool()
			tc.change(p)
			got, err := PodSecurityLevel(p)
			if err != nil {
				t.Fatal(err)
			}
			if got.Level != tc.level {
				t.Errorf("level %s (%v), want %s", got.Level, got.Reasons, tc.level)
			}
			if tc.level == psaapi.LevelRestricted && len(got.Reasons) != 0 {
				t.Errorf("restricted with reasons %v", got.Reasons)
			}
			for _, want := range tc.reasons {
				if !strings.Contains(strings.Join(got.Reasons, "; "), want) {
					t.Errorf("reasons %q do not say %q", got.Reasons, want)
				}
			}
		})
	}
}

func TestPodSecurityCondition(t *testing.T) {
	t.Parallel()
	p := testPool()
	c := PodSecurityCondition(p)
	if c.Type != ConditionPodSecurity || c.Status != metav1.ConditionFalse || c.Reason != ReasonPodSecurityBaseline || c.ObservedGeneration != 3 ||
		!strings.Contains(c.Message, "baseline level, not restricted: runAsNonRoot != true") {
		t.Errorf("default pool: condition %+v", c)
	}
	p.Spec.Template.PodSecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
	if c := PodSecurityCondition(p); c.Status != metav1.ConditionTrue || c.Reason != ReasonPodSecurityRestricted {
		t.Errorf("non-root pool: condition %+v", c)
	}
}

func resourceMust(s string) resource.Quantity { return resource.MustParse(s) }
