package claim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"sandbox.io/injector/claim"
)

// TestNew: bad configurations fail when the claimer is built, with a
// message naming the problem, and metrics register once per registry.
func TestNew(t *testing.T) {
	t.Parallel()
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		rest *rest.Config
		cfg  claim.Config
		want string
	}{
		{"nil rest config", nil, claim.Config{}, "rest config is nil"},
		{"bad transport", cfg, claim.Config{Transport: "carrier-pigeon"}, `transport "carrier-pigeon" is not direct or proxy`},
		{"negative probe timeout", cfg, claim.Config{ProbeTimeout: -time.Second}, "probe timeout -1s is negative"},
		{"negative cold timeout", cfg, claim.Config{ColdTimeout: -time.Second}, "cold timeout -1s is negative"},
	} {
		if _, err := claim.New(tc.rest, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}

	reg := prometheus.NewRegistry()
	if _, err := claim.New(cfg, claim.Config{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := claim.New(cfg, claim.Config{Registerer: reg}); err == nil || !strings.Contains(err.Error(), "another claimer registered them") {
		t.Errorf("a second claimer on the same registry: err = %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	// The counter's three results exist from the start, at zero.
	if got := strings.Join(names, ","); got != "sandbox_claim_total" {
		t.Errorf("metrics before any claim: %s", got)
	}
	if _, err := claim.ParseTransport("proxy"); err != nil {
		t.Error(err)
	}
}
