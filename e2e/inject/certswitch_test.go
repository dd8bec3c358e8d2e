package inject

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestCertificateGeneratorSwitch switches a running release's certificate
// generator under load, both ways, as the README's "Serving certificates"
// says: from webhook (the webhook's own Secret and caBundle, as `make demo`
// installs) to helm, handing the Secret to Helm first, and back. Two
// webhook replicas, warm pools, opted-in pods created and claims made all
// along: every pod is admitted with the injection, every claim is bound,
// and a sandbox claimed before keeps answering.
func TestCertificateGeneratorSwitch(t *testing.T) {
	x := requireE2E(t)
	ctx := t.Context()
	t.Cleanup(func() {
		if err := x.install(); err != nil {
			t.Errorf("putting the suite's chart back: %v", err)
		}
	})
	chart := filepath.Join(x.root, "charts", "sandbox-injector")
	toWebhook := append(append([]string{"upgrade", "--install", release, chart}, x.upgradeValues()...), "--set", "generatedCerts.generator=webhook")
	toHelm := append([]string{"upgrade", release, chart}, x.upgradeValues()...)
	if err := x.helmCmd(ctx, toWebhook...); err != nil {
		t.Fatalf("installing with the webhook's generator: %v", err)
	}
	if err := x.waitForWebhook(ctx); err != nil {
		t.Fatal(err)
	}

	u := x.newUpgradeRun(t)
	for _, name := range []string{"steady", "load"} {
		p := x.createPool(t, u.ns, name, upgradeWarmPerPool)
		x.waitWarmReady(t, p, upgradeWarmPerPool, "")
		u.pools = append(u.pools, p)
	}
	u.claimKept(t)

	runner := x.runnerRef(x.tag)
	// The README's two kubectl commands, done with the API.
	if err := x.adoptServingSecret(ctx); err != nil {
		t.Fatal(err)
	}
	phases := []upgradePhase{u.phase(t, "to-helm", toHelm, runner)}
	phases = append(phases, u.phase(t, "to-webhook", toWebhook, runner))

	var b strings.Builder
	fmt.Fprintf(&b, "certificate generator switched webhook -> helm -> webhook under load; 2 webhook replicas, 2 pools of %d warm pods; load %d pods/s, %d claims/s (at most %d in flight)\n",
		upgradeWarmPerPool, loadPodsPerSecond, loadClaimsPerSecond, claimsInFlight)
	writePhases(&b, phases, u.history)
	fmt.Print("\n" + b.String())
	t.Log("\n" + b.String())
	checkPhases(t, phases)
}
