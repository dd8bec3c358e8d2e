package webhook

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sandbox.io/injector/internal/logging"
)

// namespaceReader answers Get of any Namespace with no labels, as the
// informer cache does for a namespace without any; every other read fails.
type namespaceReader struct{ client.Reader }

func (namespaceReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return http.ErrNotSupported
	}
	*ns = corev1.Namespace{}
	ns.Name = key.Name
	return nil
}

// reviewOf wraps a pod's JSON in a CREATE AdmissionReview.
func reviewOf(pod []byte) []byte {
	return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"0b8b3c2e-1b7f-4c8e-9a53-1d8c7a6b5e4f",` +
		`"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},` +
		`"namespace":"team-a","operation":"CREATE","userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller"},` +
		`"object":` + string(pod) + `}}`)
}

// BenchmarkServeHTTP is one admission over the HTTP handler, TLS and
// HTTP/2 aside: LimitRequests, controller-runtime's review decoding and
// response encoding, and the handler, for a no-op handler and for ours
// (with logs discarded, and with the JSON log at the level production runs).
func BenchmarkServeHTTP(b *testing.B) {
	cfg := testConfig(b)
	body := reviewOf(benchPod(3))
	ours := func(log *slog.Logger) http.Handler {
		h, err := NewHandler(*cfg, HandlerOptions{Namespaces: namespaceReader{}, Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		return LimitRequests(&admission.Webhook{Handler: h})
	}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"noop", LimitRequests(&admission.Webhook{Handler: admission.HandlerFunc(
			func(context.Context, admission.Request) admission.Response { return admission.Allowed("") })})},
		{"ours", ours(nil)},
		{"ours-log-info", ours(slog.New(logging.NewHandler(io.Discard, slog.LevelInfo)))},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte(`"allowed":true`)) {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
