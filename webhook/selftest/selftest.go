package selftest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"sandbox.io/injector/api/v1alpha1"
)

// ContainerName is the container of the dry-run pods.
const ContainerName = "selftest"

// ErrNotInjected reports that the opted-in pod came back without the runner.
var ErrNotInjected = errors.New("the opted-in pod was not injected")

// ErrInjectedOptOut reports that the opted-out pod came back injected.
var ErrInjectedOptOut = errors.New("the opted-out pod was injected")

// Config says where and with what the dry runs happen.
type Config struct {
	// Namespace is where the dry-run pods are created. It must be a
	// namespace the webhook injects opted-in pods in (not excluded, not
	// labelled sandbox.io/inject=disabled). Required.
	Namespace string
	// Image is the image of the dry-run pods' container; it is never pulled.
	// Required.
	Image string
	// Name is the name prefix of the dry-run pods. Default "sandbox-selftest".
	Name string
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "sandbox-selftest"
	}
}

// Result is what the API server returned for the two dry runs.
type Result struct {
	// Status is the opted-in pod's sandbox.io/status.
	Status v1alpha1.InjectionStatus
	// Command is the opted-in container's command after admission.
	Command []string
}

// Run performs both dry runs and checks them. It returns an error wrapping
// ErrNotInjected or ErrInjectedOptOut when the installation does not work, or
// the API server's own error (a webhook that cannot be reached with
// failurePolicy Fail, the guard policy, RBAC) with what was being tried.
func Run(ctx context.Context, kube kubernetes.Interface, cfg Config) (*Result, error) {
	cfg.setDefaults()
	if cfg.Namespace == "" || cfg.Image == "" {
		return nil, errors.New("selftest needs a namespace and an image")
	}
	res := &Result{}

	in, err := dryRun(ctx, kube, pod(cfg, cfg.Name+"-in", "true"))
	if err != nil {
		return nil, fmt.Errorf("dry-run create of an opted-in pod in namespace %s: %w", cfg.Namespace, err)
	}
	raw, ok := in.Annotations[v1alpha1.AnnotationStatus]
	if !ok {
		return nil, fmt.Errorf("%w: pod %s/%s came back without %s; is the webhook running, and does namespace %s opt out (label %s=disabled, or an excluded namespace)?",
			ErrNotInjected, cfg.Namespace, in.Name, v1alpha1.AnnotationStatus, cfg.Namespace, v1alpha1.AnnotationInject)
	}
	if err := json.Unmarshal([]byte(raw), &res.Status); err != nil {
		return nil, fmt.Errorf("%w: %s is not JSON: %q: %w", ErrNotInjected, v1alpha1.AnnotationStatus, raw, err)
	}
	if res.Status.State != v1alpha1.StatusInjected || !slices.Contains(res.Status.Containers, ContainerName) {
		return nil, fmt.Errorf("%w: %s is %s, want state %q and container %q", ErrNotInjected, v1alpha1.AnnotationStatus, raw, v1alpha1.StatusInjected, ContainerName)
	}
	for _, c := range in.Spec.Containers {
		if c.Name == ContainerName {
			res.Command = c.Command
		}
	}
	if slices.Equal(res.Command, originalCommand) {
		return nil, fmt.Errorf("%w: container %s still runs %q directly, not under the runner", ErrNotInjected, ContainerName, strings.Join(originalCommand, " "))
	}

	out, err := dryRun(ctx, kube, pod(cfg, cfg.Name+"-out", "false"))
	if err != nil {
		return nil, fmt.Errorf("dry-run create of an opted-out pod in namespace %s: %w", cfg.Namespace, err)
	}
	if v, ok := out.Annotations[v1alpha1.AnnotationStatus]; ok {
		return nil, fmt.Errorf("%w: pod %s/%s annotated %s: \"false\" came back with %s %s", ErrInjectedOptOut, cfg.Namespace, out.Name, v1alpha1.AnnotationInject, v1alpha1.AnnotationStatus, v)
	}
	return res, nil
}

// originalCommand is the dry-run container's own command; the runner wraps
// it after injection.
var originalCommand = []string{"/bin/true"}

// pod is a minimal pod that meets the restricted Pod Security Standard (so
// that it is admitted in any namespace), with sandbox.io/inject set to inject.
func pod(cfg Config, name, inject string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   cfg.Namespace,
			Name:        name,
			Labels:      map[string]string{"app.kubernetes.io/name": "sandbox-selftest"},
			Annotations: map[string]string{v1alpha1.AnnotationInject: inject},
		},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:    ContainerName,
				Image:   cfg.Image,
				Command: originalCommand,
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}

// dryRun creates p with dryRun=All and returns what the API server would
// have stored.
func dryRun(ctx context.Context, kube kubernetes.Interface, p *corev1.Pod) (*corev1.Pod, error) {
	got, err := kube.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict})
	if err != nil {
		return nil, err
	}
	return got, nil
}
