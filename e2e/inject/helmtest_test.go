package inject

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestHelmTest runs the chart's `helm test` hook on the installed release:
// the webhook image's selftest pod dry-runs an opted-in and an opted-out pod
// in namespace default through the API server and must find the first
// injected and the second untouched.
func TestHelmTest(t *testing.T) {
	x := requireE2E(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	if err := x.waitForWebhook(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := x.helmOutput(ctx, "test", release, "--namespace", releaseNS, "--logs", "--timeout", "3m")
	if err != nil {
		t.Fatalf("helm test: %v\n%s", err, out)
	}
	for _, want := range []string{"Succeeded", "ok: a dry-run pod in namespace default was injected"} {
		if !strings.Contains(out, want) {
			t.Errorf("helm test output lacks %q:\n%s", want, out)
		}
	}
}

// helmOutput runs helm and returns its combined output.
func (x *env) helmOutput(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, x.helm, args...).CombinedOutput()
	return string(out), err
}
