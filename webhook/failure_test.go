package webhook_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/webhook"
	"sandbox.io/injector/webhook/entrypoint"
)

// panickingResolver stands for a bug deep in an image lookup.
type panickingResolver struct{}

func (panickingResolver) Resolve(context.Context, string, v1.Platform, authn.Keychain) (entrypoint.Command, error) {
	panic("resolver bug")
}

func podRequest(ns string, raw string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID("3f9a1c2e-0000-4000-8000-000000000001"),
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Namespace: ns,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: []byte(raw)},
	}}
}

const noCommandPod = `{"metadata":{"name":"p","annotations":{"sandbox.io/inject":"true"}},
"spec":{"containers":[{"name":"app","image":"127.0.0.1:1/app:v1"}]}}`

// TestHandlerFailures: what the API server gets back when a dependency of
// the handler fails. Every answer keeps the request UID (or the API server
// discards it), a bug is a 500 that is counted, and nothing is admitted
// uninjected by accident.
func TestHandlerFailures(t *testing.T) {
	cfg := testenv.Start(t, &envtest.Environment{})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a panic is recovered, counted and answered 500", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		metrics := webhook.NewMetrics(reg)
		h, err := webhook.NewHandler(webhook.Config{RunnerImage: runnerImage},
			webhook.HandlerOptions{Namespaces: c, APIReader: c, Resolver: panickingResolver{}, Metrics: metrics})
		if err != nil {
			t.Fatal(err)
		}
		req := podRequest("default", noCommandPod)
		resp := h.Handle(t.Context(), req)
		if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusInternalServerError {
			t.Fatalf("response %+v, want a refusal with code 500", resp.AdmissionResponse)
		}
		if resp.UID != req.UID {
			t.Errorf("UID %q, want the request's %q", resp.UID, req.UID)
		}
		if n := testutil.ToFloat64(metrics.Panics); n != 1 {
			t.Errorf("panics counted: %v, want 1", n)
		}
		if n := testutil.ToFloat64(metrics.Admissions.WithLabelValues(webhook.ResultError)); n != 1 {
			t.Errorf("error admissions counted: %v, want 1", n)
		}
	})

	t.Run("the API server unreachable: 500 naming the namespace", func(t *testing.T) {
		dead := rest.CopyConfig(cfg)
		dead.Host = "https://127.0.0.1:1"
		deadClient, err := client.New(dead, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		h, err := webhook.NewHandler(webhook.Config{RunnerImage: runnerImage},
			webhook.HandlerOptions{Namespaces: deadClient, APIReader: deadClient})
		if err != nil {
			t.Fatal(err)
		}
		req := podRequest("team-a", noCommandPod)
		resp := h.Handle(t.Context(), req)
		if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusInternalServerError ||
			!strings.Contains(resp.Result.Message, "reading namespace team-a") {
			t.Fatalf("response %+v, want a 500 saying which namespace could not be read", resp.AdmissionResponse)
		}
		if resp.UID != req.UID {
			t.Errorf("UID %q, want the request's %q", resp.UID, req.UID)
		}
	})

	t.Run("an unreachable registry in server mode: injected without a child, with a warning", func(t *testing.T) {
		h, err := webhook.NewHandler(webhook.Config{RunnerImage: runnerImage},
			webhook.HandlerOptions{Namespaces: c, APIReader: c, Resolver: entrypoint.NewResolver(entrypoint.Config{})})
		if err != nil {
			t.Fatal(err)
		}
		resp := h.Handle(t.Context(), podRequest("default", noCommandPod))
		if !resp.Allowed || len(resp.Patch) == 0 {
			t.Fatalf("response %+v, want the pod injected", resp.AdmissionResponse)
		}
		if len(resp.Warnings) == 0 || !strings.Contains(resp.Warnings[0], "no child process") {
			t.Errorf("warnings %q, want one saying the runner has no child", resp.Warnings)
		}
		// The pod author learns the one generic sentence, not what the
		// network or the registry said.
		if len(resp.Warnings) == 0 || !strings.Contains(resp.Warnings[0], webhook.ErrLookupFailed.Error()) ||
			strings.Contains(resp.Warnings[0], "refused") || strings.Contains(resp.Warnings[0], "127.0.0.1:1") {
			t.Errorf("warnings %q, want the generic lookup failure only", resp.Warnings)
		}
	})

	t.Run("a missing namespace object: 500, not a silent skip", func(t *testing.T) {
		h, err := webhook.NewHandler(webhook.Config{RunnerImage: runnerImage},
			webhook.HandlerOptions{Namespaces: c, APIReader: c})
		if err != nil {
			t.Fatal(err)
		}
		resp := h.Handle(t.Context(), podRequest("no-such-namespace", noCommandPod))
		if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusInternalServerError {
			t.Errorf("response %+v, want a 500", resp.AdmissionResponse)
		}
	})
}
