package charts

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sandbox.io/injector/internal/testenv"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// testPod is a minimal valid pod; change adjusts it.
func testPod(ns, name string, annotations map[string]string, change func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "main", Image: "app", Command: []string{"/app"}}},
		},
	}
	if change != nil {
		change(p)
	}
	return p
}

func withInitContainer(name string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: name, Image: "runner", Command: []string{"/sandbox-runner", "install"}})
	}
}

func withImageVolume(name string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			Image: &corev1.ImageVolumeSource{Reference: "runner", PullPolicy: corev1.PullIfNotPresent},
		}})
	}
}

func withEmptyDirVolume(name string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
}

// admissionNamespaces creates one namespace of each kind the admission
// rules distinguish, with names prefixed by prefix, and returns them.
type admissionNamespaces struct{ release, enabled, disabled, plain, excluded string }

func (n admissionNamespaces) all() []any {
	return []any{n.release, n.enabled, n.disabled, n.plain, n.excluded}
}

// The guard and routing tests share one API server and run in parallel; each
// excludes the other's namespaces (through the chart's own
// webhook.excludedNamespaces) so that neither sees the other's admission
// configuration.
var (
	guardNamespaces   = namespacesFor("guard")
	routingNamespaces = namespacesFor("routing")
)

func namespacesFor(prefix string) admissionNamespaces {
	return admissionNamespaces{
		release:  prefix + "-system",
		enabled:  prefix + "-enabled",
		disabled: prefix + "-disabled",
		plain:    prefix + "-plain",
		excluded: prefix + "-excluded",
	}
}

func makeAdmissionNamespaces(t *testing.T, c client.Client, n admissionNamespaces) {
	t.Helper()
	createNamespace(t, c, n.release, map[string]string{"sandbox.io/inject": "enabled"})
	createNamespace(t, c, n.enabled, map[string]string{"sandbox.io/inject": "enabled"})
	createNamespace(t, c, n.disabled, map[string]string{"sandbox.io/inject": "disabled"})
	createNamespace(t, c, n.plain, nil)
	createNamespace(t, c, n.excluded, map[string]string{"sandbox.io/inject": "enabled"})
	// kube-system is excluded even when someone labels it enabled.
	patch := []byte(`{"metadata":{"labels":{"sandbox.io/inject":"enabled"}}}`)
	sys := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}}
	if err := c.Patch(t.Context(), sys, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatalf("labelling kube-system: %v", err)
	}
}

// eventually retries check until it returns nil or a generous deadline
// passes: admission configuration reaches the API server's admission
// plugins through informers, a moment after it is created.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	eventuallyWithin(t, what, 90*time.Second, check)
}

func eventuallyWithin(t *testing.T, what string, timeout time.Duration, check func() error) {
	t.Helper()
	testenv.Eventually(t, timeout, what, check)
}

// TestGuardPolicy installs the chart's guard for real, beside its webhook
// configuration with failurePolicy Ignore and no webhook running (a webhook
// that fails open), and checks what gets admitted: the guard must deny
// exactly the opted-in pods that arrive without the injected runner, in the
// namespaces the webhook covers.
func TestGuardPolicy(t *testing.T) {
	t.Parallel()
	requireHelm(t)
	c := requireAPIServer(t)
	ns := guardNamespaces
	makeAdmissionNamespaces(t, c, ns)
	objs := render(t, Release{Name: "guard", Namespace: ns.release, Values: map[string]any{
		"webhook": map[string]any{
			"excludedNamespaces": append([]any{ns.excluded}, routingNamespaces.all()...),
			"failurePolicy":      "Ignore",
		},
	}})
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		// The guard's; the chart's other policies (isolation.yaml) have tests of their own.
		var guard []*unstructured.Unstructured
		for _, u := range Find(objs, kind) {
			if kind == "MutatingWebhookConfiguration" || strings.HasSuffix(u.GetName(), "-guard") {
				guard = append(guard, u)
			}
		}
		u, err := FindOne(guard, kind)
		if err != nil {
			t.Fatal(err)
		}
		obj := u.DeepCopy()
		if err := c.Create(t.Context(), obj); err != nil {
			t.Fatalf("creating %s: %v", kind, err)
		}
		t.Cleanup(func() {
			if err := c.Delete(context.WithoutCancel(t.Context()), obj); err != nil {
				t.Logf("deleting %s: %v", kind, err)
			}
		})
	}

	create := func(p *corev1.Pod) error { return c.Create(t.Context(), p, client.DryRunAll) }
	// Wait until the policy is in force on both routes: the annotation, and
	// the namespace label (which the API server reads from its informer).
	eventually(t, "guard in force", func() error {
		for _, p := range []*corev1.Pod{
			testPod(ns.plain, "probe", map[string]string{"sandbox.io/inject": "true"}, nil),
			testPod(ns.enabled, "probe", nil, nil),
		} {
			if err := create(p); err == nil {
				return fmt.Errorf("an uninjected opted-in pod in %s was admitted", p.Namespace)
			} else if !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) {
				return fmt.Errorf("an uninjected opted-in pod in %s was answered: %w", p.Namespace, err)
			}
		}
		return nil
	})

	inject := func(v string) map[string]string { return map[string]string{"sandbox.io/inject": v} }
	tests := []struct {
		name   string
		pod    *corev1.Pod
		denied bool
	}{
		{name: "enabled namespace, uninjected", pod: testPod(ns.enabled, "a", nil, nil), denied: true},
		{name: "enabled namespace, annotated true, uninjected", pod: testPod(ns.enabled, "b", inject("true"), nil), denied: true},
		{name: "enabled namespace, malformed annotation, uninjected", pod: testPod(ns.enabled, "c", inject("yes"), nil), denied: true},
		{name: "enabled namespace, injected by copy", pod: testPod(ns.enabled, "d", nil, withInitContainer("sandbox-runner-install"))},
		{name: "enabled namespace, injected by image volume", pod: testPod(ns.enabled, "e", nil, withImageVolume("sandbox-runner"))},
		{name: "enabled namespace, emptyDir named like the runner volume", pod: testPod(ns.enabled, "f", nil, withEmptyDirVolume("sandbox-runner")), denied: true},
		{name: "enabled namespace, other init container", pod: testPod(ns.enabled, "g", nil, withInitContainer("setup")), denied: true},
		{name: "enabled namespace, opted out", pod: testPod(ns.enabled, "h", inject("false"), nil)},
		{name: "enabled namespace, hostNetwork left alone", pod: testPod(ns.enabled, "i", nil, func(p *corev1.Pod) { p.Spec.HostNetwork = true })},
		{name: "enabled namespace, Windows pod left alone", pod: testPod(ns.enabled, "j", nil, func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: corev1.Windows} })},
		{name: "plain namespace, annotated true, uninjected", pod: testPod(ns.plain, "k", inject("true"), nil), denied: true},
		{name: "plain namespace, annotated true, injected", pod: testPod(ns.plain, "l", inject("true"), withInitContainer("sandbox-runner-install"))},
		{name: "plain namespace, not annotated", pod: testPod(ns.plain, "m", nil, nil)},
		{name: "plain namespace, malformed annotation", pod: testPod(ns.plain, "n", inject("yes"), nil)},
		{name: "disabled namespace, annotated true", pod: testPod(ns.disabled, "o", inject("true"), nil)},
		{name: "release namespace, annotated true", pod: testPod(ns.release, "p", inject("true"), nil)},
		{name: "excluded namespace, annotated true", pod: testPod(ns.excluded, "q", inject("true"), nil)},
		{name: "kube-system, labelled enabled and annotated true", pod: testPod("kube-system", "guard-r", inject("true"), nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := create(tc.pod)
			switch {
			case tc.denied && err == nil:
				t.Fatal("admitted, want denied by the guard")
			case tc.denied && !strings.Contains(err.Error(), "sandbox-injector webhook did not run"):
				t.Fatalf("denied with %v, want the guard's message", err)
			case !tc.denied && err != nil:
				t.Fatalf("refused, want admitted: %v", err)
			}
		})
	}
}

// recorder is a loopback HTTPS admission webhook that admits every pod
// unchanged and records which webhook of the configuration called it for
// which pod (each webhook gets its own URL path).
type recorder struct {
	mu    sync.Mutex
	calls map[string][]string // pod namespace/name -> webhook names
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(req.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "bad admission review", http.StatusBadRequest)
		return
	}
	var pod corev1.Pod
	if err := json.Unmarshal(review.Request.Object.Raw, &pod); err != nil {
		http.Error(w, "bad pod", http.StatusBadRequest)
		return
	}
	key := review.Request.Namespace + "/" + pod.Name
	r.mu.Lock()
	r.calls[key] = append(r.calls[key], strings.TrimPrefix(req.URL.Path, "/"))
	r.mu.Unlock()
	review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	review.Request = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&review)
}

func (r *recorder) callsFor(key string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls[key])
}

// TestWebhookRouting registers the chart's MutatingWebhookConfiguration, as
// rendered, pointed at a loopback recorder, and checks which pods the API
// server sends to which webhook: namespaceSelectors, name exclusions and the
// CEL matchConditions together.
func TestWebhookRouting(t *testing.T) {
	t.Parallel()
	requireHelm(t)
	c := requireAPIServer(t)
	ns := routingNamespaces
	makeAdmissionNamespaces(t, c, ns)
	objs := render(t, Release{Name: "routing", Namespace: ns.release, Values: map[string]any{
		"webhook": map[string]any{"excludedNamespaces": append([]any{ns.excluded}, guardNamespaces.all()...)},
	}})
	mwc, err := MutatingWebhookConfiguration(objs)
	if err != nil {
		t.Fatal(err)
	}

	rec := &recorder{calls: map[string][]string{}}
	srv := httptest.NewTLSServer(rec)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	local := PointAt(mwc, srv.URL, ca)
	for i := range local.Webhooks {
		// One path per webhook, so the recorder knows which one called.
		local.Webhooks[i].ClientConfig.URL = ptr.To(srv.URL + "/" + local.Webhooks[i].Name)
	}
	if err := c.Create(t.Context(), local); err != nil {
		t.Fatalf("creating the MutatingWebhookConfiguration: %v", err)
	}
	t.Cleanup(func() {
		// Other tests share the API server: stop routing pods here.
		if err := c.Delete(context.WithoutCancel(t.Context()), local); err != nil {
			t.Logf("deleting the MutatingWebhookConfiguration: %v", err)
		}
	})

	create := func(p *corev1.Pod) error { return c.Create(t.Context(), p, client.DryRunAll) }
	eventually(t, "webhook configuration in force", func() error {
		p := testPod(ns.enabled, fmt.Sprintf("probe-%d", time.Now().UnixNano()), nil, nil)
		if err := create(p); err != nil {
			return err
		}
		if len(rec.callsFor(p.Namespace+"/"+p.Name)) == 0 {
			return fmt.Errorf("pod %s not sent to the webhook yet", p.Name)
		}
		return nil
	})

	inject := func(v string) map[string]string { return map[string]string{"sandbox.io/inject": v} }
	const byNamespace, byPod = "namespace.sandbox.io", "pod.sandbox.io"
	tests := []struct {
		name string
		pod  *corev1.Pod
		want []string // webhooks called, in order
	}{
		{name: "enabled namespace", pod: testPod(ns.enabled, "a", nil, nil), want: []string{byNamespace}},
		{name: "enabled namespace, annotated true", pod: testPod(ns.enabled, "b", inject("true"), nil), want: []string{byNamespace}},
		{name: "enabled namespace, malformed annotation", pod: testPod(ns.enabled, "c", inject("yes"), nil), want: []string{byNamespace}},
		{name: "enabled namespace, opted out", pod: testPod(ns.enabled, "d", inject("false"), nil)},
		{name: "enabled namespace, other annotations only", pod: testPod(ns.enabled, "e", map[string]string{"team": "x"}, nil), want: []string{byNamespace}},
		{name: "plain namespace, annotated true", pod: testPod(ns.plain, "f", inject("true"), nil), want: []string{byPod}},
		{name: "plain namespace, malformed annotation", pod: testPod(ns.plain, "g", inject("yes"), nil), want: []string{byPod}},
		{name: "plain namespace, opted out", pod: testPod(ns.plain, "h", inject("false"), nil)},
		{name: "plain namespace, not annotated", pod: testPod(ns.plain, "i", nil, nil)},
		{name: "disabled namespace, annotated true", pod: testPod(ns.disabled, "j", inject("true"), nil)},
		{name: "release namespace, labelled enabled and annotated true", pod: testPod(ns.release, "k", inject("true"), nil)},
		{name: "excluded namespace, labelled enabled and annotated true", pod: testPod(ns.excluded, "l", inject("true"), nil)},
		{name: "kube-system, labelled enabled and annotated true", pod: testPod("kube-system", "routing-m", inject("true"), nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := create(tc.pod); err != nil {
				t.Fatalf("creating pod: %v", err)
			}
			// The call, if any, completed before Create returned.
			got := rec.callsFor(tc.pod.Namespace + "/" + tc.pod.Name)
			if !slices.Equal(tc.want, got) {
				t.Errorf("webhooks called %v, want %v", got, tc.want)
			}
		})
	}
}
