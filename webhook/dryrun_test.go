package webhook_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/webhook"
)

// TestDryRunIsNotCountedAsInjected: a dry run (kubectl --dry-run=server,
// the node agent asking which runner the webhook injects now) gets the same
// patch as the real creation, but sandbox_webhook_injections_total counts
// only pods that are created.
func TestDryRunIsNotCountedAsInjected(t *testing.T) {
	cfg := testenv.Start(t, &envtest.Environment{})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	metrics := webhook.NewMetrics(prometheus.NewRegistry())
	h, err := webhook.NewHandler(webhook.Config{RunnerImage: runnerImage},
		webhook.HandlerOptions{Namespaces: c, APIReader: c, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	const pod = `{"metadata":{"name":"p","annotations":{"sandbox.io/inject":"true"}},
"spec":{"containers":[{"name":"app","image":"busybox","command":["sleep","300"]}]}}`
	dry := podRequest("default", pod)
	dry.DryRun = ptr.To(true)
	real := podRequest("default", pod)
	dryResp, realResp := h.Handle(t.Context(), dry), h.Handle(t.Context(), real)
	if !dryResp.Allowed || !realResp.Allowed || len(dryResp.Patch) == 0 || string(dryResp.Patch) != string(realResp.Patch) {
		t.Fatalf("dry run: allowed %v with a %d-byte patch; creation: allowed %v with a %d-byte patch; want both injected alike",
			dryResp.Allowed, len(dryResp.Patch), realResp.Allowed, len(realResp.Patch))
	}
	if n := testutil.CollectAndCount(metrics.Injections); n != 1 {
		t.Fatalf("%d injection series, want 1 (the creation's)", n)
	}
	var injected float64
	for _, method := range []string{"copy", "imageVolume"} {
		for _, mode := range []string{"server", "wrap"} {
			injected += testutil.ToFloat64(metrics.Injections.WithLabelValues(method, mode))
		}
	}
	if injected != 1 {
		t.Errorf("injections counted: %v, want 1 (the dry run not counted)", injected)
	}
	if n := testutil.ToFloat64(metrics.Admissions.WithLabelValues(webhook.ResultInjected)); n != 2 {
		t.Errorf("injected admissions counted: %v, want 2 (both requests were handled)", n)
	}
}
