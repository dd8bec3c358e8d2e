package controller

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/jsonpath"
	"k8s.io/utils/ptr"

	"sandbox.io/injector/api/v1alpha1"
)

// TestWarmPodNamesPicksUntakenPods runs the jsonpath unheldAdvice hands to
// kubectl, as kubectl's printer does (missing keys allowed), on a list of a
// pool's pods: it names the warm one only, not one a claim took (same
// labels), nor one without owners.
func TestWarmPodNamesPicksUntakenPods(t *testing.T) {
	pod := func(name string, refs ...metav1.OwnerReference) corev1.Pod {
		return corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelPool: "py", v1alpha1.LabelState: v1alpha1.StateWarm}, OwnerReferences: refs},
		}
	}
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}, Items: []corev1.Pod{
		pod("warm", metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "SandboxPool", Name: "py", UID: "p", Controller: ptr.To(true)}),
		pod("taken", metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "SandboxClaim", Name: "c", UID: "c", Controller: ptr.To(true)}),
		pod("orphan"),
	}}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	var obj any
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	jp := jsonpath.New("advice").AllowMissingKeys(true)
	if err := jp.Parse(warmPodNames); err != nil {
		t.Fatalf("parsing %s: %v", warmPodNames, err)
	}
	var out bytes.Buffer
	if err := jp.Execute(&out, obj); err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(out.String()); len(got) != 1 || got[0] != "warm" {
		t.Errorf("names %q, want only the warm pod", got)
	}
	if advice := unheldAdvice(&v1alpha1.SandboxPool{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "py"}}, -1); !strings.Contains(advice, "-o jsonpath='"+warmPodNames+"'") {
		t.Errorf("advice %q does not carry the jsonpath", advice)
	}
}
