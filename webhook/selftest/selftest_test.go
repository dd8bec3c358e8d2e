package selftest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"sandbox.io/injector/api/v1alpha1"
)

// admission stands in for the API server's admission chain: it returns the
// pod it is given, changed by mutate, and checks that every create is a dry
// run (the self-test must never create anything).
func admission(t *testing.T, mutate func(*corev1.Pod) error) *fake.Clientset {
	t.Helper()
	kube := fake.NewClientset()
	kube.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca := a.(k8stesting.CreateActionImpl)
		if len(ca.CreateOptions.DryRun) != 1 || ca.CreateOptions.DryRun[0] != "All" {
			t.Errorf("create of a pod with dryRun %v, want [All]", ca.CreateOptions.DryRun)
		}
		p := ca.GetObject().(*corev1.Pod).DeepCopy()
		if err := mutate(p); err != nil {
			return true, nil, err
		}
		return true, p, nil
	})
	return kube
}

// inject mimics the webhook: opted-in pods get the status annotation and
// the runner as entrypoint.
func inject(p *corev1.Pod) error {
	if p.Annotations[v1alpha1.AnnotationInject] != "true" {
		return nil
	}
	st, _ := json.Marshal(v1alpha1.InjectionStatus{State: v1alpha1.StatusInjected, Containers: []string{ContainerName}})
	p.Annotations[v1alpha1.AnnotationStatus] = string(st)
	c := &p.Spec.Containers[0]
	c.Command = append([]string{"/.sandbox/sandbox-runner", "run", "--"}, c.Command...)
	return nil
}

func TestRun(t *testing.T) {
	t.Parallel()
	cfg := Config{Namespace: "default", Image: "sandbox-webhook:dev"}
	tests := []struct {
		name    string
		mutate  func(*corev1.Pod) error
		wantErr error
		want    string
	}{
		{name: "injected", mutate: inject},
		{name: "webhook not called", mutate: func(*corev1.Pod) error { return nil }, wantErr: ErrNotInjected, want: "came back without sandbox.io/status"},
		{
			name: "status without the container",
			mutate: func(p *corev1.Pod) error {
				p.Annotations[v1alpha1.AnnotationStatus] = `{"state":"injected","containers":["other"]}`
				return nil
			},
			wantErr: ErrNotInjected, want: `want state "injected" and container "selftest"`,
		},
		{
			name: "status but command unchanged",
			mutate: func(p *corev1.Pod) error {
				p.Annotations[v1alpha1.AnnotationStatus] = `{"state":"injected","containers":["selftest"]}`
				return nil
			},
			wantErr: ErrNotInjected, want: "not under the runner",
		},
		{
			name: "opt-out injected too",
			mutate: func(p *corev1.Pod) error {
				p.Annotations[v1alpha1.AnnotationInject] = "true"
				return inject(p)
			},
			wantErr: ErrInjectedOptOut, want: "sandbox-selftest-out",
		},
		{
			name: "refused",
			mutate: func(p *corev1.Pod) error {
				return apierrors.NewInternalError(errors.New(`failed calling webhook "pod.sandbox.io": connection refused`))
			},
			want: `dry-run create of an opted-in pod in namespace default: Internal error occurred: failed calling webhook "pod.sandbox.io"`,
		},
		{
			name: "forbidden",
			mutate: func(p *corev1.Pod) error {
				return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, p.Name, errors.New("no RBAC"))
			},
			want: "forbidden",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := Run(t.Context(), admission(t, tc.mutate), cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if res.Status.State != v1alpha1.StatusInjected || res.Command[0] != "/.sandbox/sandbox-runner" {
					t.Errorf("result %+v", res)
				}
				return
			}
			if err == nil {
				t.Fatalf("Run succeeded, want an error containing %q", tc.want)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestRunNeedsNamespaceAndImage(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{Namespace: "default"}, {Image: "x"}} {
		if _, err := Run(t.Context(), fake.NewClientset(), cfg); err == nil {
			t.Errorf("Run(%+v) succeeded", cfg)
		}
	}
}

// The dry-run pods must stay admissible in a namespace that enforces the
// restricted Pod Security Standard; this checks the fields that standard
// requires.
func TestPodIsRestricted(t *testing.T) {
	t.Parallel()
	p := pod(Config{Namespace: "ns", Image: "img", Name: "x"}, "x-in", "true")
	sc := p.Spec.Containers[0].SecurityContext
	if !*p.Spec.SecurityContext.RunAsNonRoot || p.Spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
		*sc.AllowPrivilegeEscalation || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("pod security context is not restricted: %+v %+v", p.Spec.SecurityContext, sc)
	}
}
