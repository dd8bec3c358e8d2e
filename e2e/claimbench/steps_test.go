package claimbench

import (
	"strings"
	"testing"
)

const stepsBefore = `# HELP sandbox_claim_bind_step_duration_seconds Time of each step.
# TYPE sandbox_claim_bind_step_duration_seconds histogram
sandbox_claim_bind_step_duration_seconds_bucket{step="take",le="0.025"} 4
sandbox_claim_bind_step_duration_seconds_bucket{step="take",le="+Inf"} 5
sandbox_claim_bind_step_duration_seconds_sum{step="take"} 0.1
sandbox_claim_bind_step_duration_seconds_count{step="take"} 5
# HELP other_total Something else.
# TYPE other_total counter
other_total 3
# TYPE sandbox_claim_take_conflicts_total counter
sandbox_claim_take_conflicts_total{outcome="lost"} 1
sandbox_claim_take_conflicts_total{outcome="retried"} 2
`

const stepsAfter = `# TYPE sandbox_claim_bind_step_duration_seconds histogram
sandbox_claim_bind_step_duration_seconds_bucket{step="take",le="0.025"} 10
sandbox_claim_bind_step_duration_seconds_bucket{step="take",le="+Inf"} 15
sandbox_claim_bind_step_duration_seconds_sum{step="take"} 0.5
sandbox_claim_bind_step_duration_seconds_count{step="take"} 15
sandbox_claim_bind_step_duration_seconds_bucket{step="status",le="0.025"} 2
sandbox_claim_bind_step_duration_seconds_bucket{step="status",le="+Inf"} 2
sandbox_claim_bind_step_duration_seconds_sum{step="status"} 0.008
sandbox_claim_bind_step_duration_seconds_count{step="status"} 2
# TYPE sandbox_claim_bind_duration_seconds histogram
sandbox_claim_bind_duration_seconds_bucket{origin="cold",le="0.025"} 0
sandbox_claim_bind_duration_seconds_bucket{origin="cold",le="+Inf"} 1
sandbox_claim_bind_duration_seconds_sum{origin="cold"} 2
sandbox_claim_bind_duration_seconds_count{origin="cold"} 1
sandbox_claim_bind_duration_seconds_bucket{origin="warm",le="0.025"} 1
sandbox_claim_bind_duration_seconds_bucket{origin="warm",le="+Inf"} 2
sandbox_claim_bind_duration_seconds_sum{origin="warm"} 0.06
sandbox_claim_bind_duration_seconds_count{origin="warm"} 2
# TYPE sandbox_claim_take_conflicts_total counter
sandbox_claim_take_conflicts_total{outcome="lost"} 1
sandbox_claim_take_conflicts_total{outcome="retried"} 5
`

// TestStepsSince: the steps counted between two scrapes, their means and
// how many were over the slow bound, with the warm bindings as a whole
// after them (cold ones left out); a step with no binding in between, or
// one absent from the first scrape, is handled.
func TestStepsSince(t *testing.T) {
	before, err := ParseSteps(strings.NewReader(stepsBefore))
	if err != nil {
		t.Fatal(err)
	}
	after, err := ParseSteps(strings.NewReader(stepsAfter))
	if err != nil {
		t.Fatal(err)
	}
	got := after.Since(before).Format(0.025)
	want := "take mean 40.0 ms (4 of 10 over 25 ms), status mean 4.0 ms (0 of 2 over 25 ms), seen-to-bound mean 30.0 ms (1 of 2 over 25 ms), pods changed at the take: retried 3"
	if got != want {
		t.Errorf("Format: %q, want %q", got, want)
	}
	if got := before.Since(before).Format(0.025); got != "no warm binding counted" {
		t.Errorf("no bindings in between: %q", got)
	}
	if _, err := ParseSteps(strings.NewReader("not { metrics")); err == nil {
		t.Error("a malformed exposition parsed")
	}
}
