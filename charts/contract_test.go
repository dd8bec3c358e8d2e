package charts

import (
	"slices"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"sandbox.io/injector/runner/api"
)

// TestRunnerDefaultsAreTheContract holds the chart's runner defaults
// (values.yaml keeps its own literals, for readers) to the runner's contract
// in runner/api: what the webhook is told by default is what the runner,
// the claim controller and the clients assume.
func TestRunnerDefaultsAreTheContract(t *testing.T) {
	t.Parallel()
	dep := one[appsv1.Deployment](t, render(t, Release{Values: webhookOnly(nil)}), "Deployment")
	args := dep.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{
		"--runner-port=" + strconv.Itoa(api.DefaultPort),
		"--token-secret=" + api.DefaultTokenSecret,
	} {
		if !slices.Contains(args, want) {
			t.Errorf("the webhook's default args %v lack %s (runner/api's default)", args, want)
		}
	}
}
