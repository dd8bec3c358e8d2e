package claimbench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// StepMetric is the claim controller's histogram of a warm binding's
// steps, by step: take (the pod's conditional update), runner (its POST
// /claim), status (the Bound status write).
const StepMetric = "sandbox_claim_bind_step_duration_seconds"

// BindMetric is the claim controller's histogram of a whole binding, from
// when it first saw the claim to its Bound status write, by origin; its
// warm bindings are read as the step StepBind.
const BindMetric = "sandbox_claim_bind_duration_seconds"

// ConflictMetric is the claim controller's count of warm pods found changed
// at their conditional update (the take), by outcome: retried (read again,
// still free) or lost (taken or gone meanwhile). They are read as the
// steps conflictStep+outcome, counts with no durations.
const ConflictMetric = "sandbox_claim_take_conflicts_total"

const conflictStep = "take conflict "

// StepBind names the controller's whole warm binding among the steps: what
// the claimant waits beyond it is the API server's (the claim's creation,
// the watch events both ways) and the controller's queue.
const StepBind = "seen-to-bound"

// StepHist is one step's histogram: the sum of its durations in seconds,
// how many there were, and the cumulative count at each upper bound.
type StepHist struct {
	Sum, Count float64
	Buckets    map[float64]float64
}

// Steps are the step histograms read from the controller's metrics.
type Steps map[string]StepHist

// ParseSteps reads StepMetric, and BindMetric's warm bindings as StepBind,
// from a Prometheus text exposition.
func ParseSteps(r io.Reader) (Steps, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing the controller's metrics: %w", err)
	}
	out := Steps{}
	for _, m := range families[StepMetric].GetMetric() {
		out[label(m, "step")] = hist(m)
	}
	for _, m := range families[BindMetric].GetMetric() {
		if label(m, "origin") == "warm" {
			out[StepBind] = hist(m)
		}
	}
	for _, m := range families[ConflictMetric].GetMetric() {
		out[conflictStep+label(m, "outcome")] = StepHist{Count: m.GetCounter().GetValue()}
	}
	return out, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func hist(m *dto.Metric) StepHist {
	h := m.GetHistogram()
	sh := StepHist{Sum: h.GetSampleSum(), Count: float64(h.GetSampleCount()), Buckets: map[float64]float64{}}
	for _, b := range h.GetBucket() {
		sh.Buckets[b.GetUpperBound()] = float64(b.GetCumulativeCount())
	}
	return sh
}

// Since is what s counted after before: the difference of each step's
// sums and counts.
func (s Steps) Since(before Steps) Steps {
	out := Steps{}
	for step, h := range s {
		b := before[step]
		d := StepHist{Sum: h.Sum - b.Sum, Count: h.Count - b.Count, Buckets: map[float64]float64{}}
		for le, n := range h.Buckets {
			d.Buckets[le] = n - b.Buckets[le]
		}
		out[step] = d
	}
	return out
}

// Format says, for each step in the order of the binding, its mean and how
// many of its durations were over slow seconds (by the histogram bucket at
// slow, which must be one of its bounds), then the takes that met a
// changed pod, if any, by outcome.
func (s Steps) Format(slow float64) string {
	order := []string{"take", "runner", "status", StepBind}
	var conflicts []string
	for _, step := range slices.Sorted(maps.Keys(s)) {
		if outcome, ok := strings.CutPrefix(step, conflictStep); ok {
			if n := s[step].Count; n > 0 {
				conflicts = append(conflicts, fmt.Sprintf("%s %.0f", outcome, n))
			}
			continue
		}
		if !slices.Contains(order, step) {
			order = append(order, step)
		}
	}
	var parts []string
	for _, step := range order {
		h, ok := s[step]
		if !ok || h.Count == 0 {
			continue
		}
		over := "?"
		if n, ok := h.Buckets[slow]; ok {
			over = fmt.Sprintf("%.0f", h.Count-n)
		}
		parts = append(parts, fmt.Sprintf("%s mean %.1f ms (%s of %.0f over %.0f ms)", step, 1000*h.Sum/h.Count, over, h.Count, 1000*slow))
	}
	if len(parts) == 0 {
		return "no warm binding counted"
	}
	if len(conflicts) > 0 {
		parts = append(parts, "pods changed at the take: "+strings.Join(conflicts, ", "))
	}
	return strings.Join(parts, ", ")
}
