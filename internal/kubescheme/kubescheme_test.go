package kubescheme

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"sandbox.io/injector/api/v1alpha1"
)

func TestNewKnowsBothGroups(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for want, obj := range map[schema.GroupVersionKind]runtime.Object{
		corev1.SchemeGroupVersion.WithKind("Pod"):      &corev1.Pod{},
		v1alpha1.GroupVersion.WithKind("SandboxPool"):  &v1alpha1.SandboxPool{},
		v1alpha1.GroupVersion.WithKind("SandboxClaim"): &v1alpha1.SandboxClaim{},
	} {
		kinds, _, err := s.ObjectKinds(obj)
		if err != nil || len(kinds) != 1 || kinds[0] != want {
			t.Errorf("%T: kinds %v, %v; want %v", obj, kinds, err, want)
		}
	}
}
