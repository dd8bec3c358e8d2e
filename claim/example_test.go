package claim_test

import (
	"context"
	"fmt"
	"os"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"sandbox.io/injector/claim"
	"sandbox.io/injector/runner/api"
)

// Example claims a sandbox from the pool "python" in namespace "sandboxes",
// runs code in it and releases it. It needs a cluster with the chart and a
// SandboxPool installed, so it is compiled but not run by go test.
func Example() {
	ctx := context.Background()
	cfg, err := ctrl.GetConfig() // KUBECONFIG, in-cluster, ~/.kube/config
	if err != nil {
		panic(err)
	}
	c, err := claim.New(cfg, claim.Config{
		Transport: claim.TransportDirect, // inside the cluster; TransportProxy from outside
	})
	if err != nil {
		panic(err)
	}
	sb, err := c.Claim(ctx, claim.Request{
		Namespace: "sandboxes", Pool: "python",
		Env:      map[string]string{"API_KEY": "only this claimant's commands see it"},
		Lifetime: 10 * time.Minute,
	})
	if err != nil {
		panic(err)
	}
	defer func() {
		if err := c.Release(ctx, sb.Namespace, sb.Claim); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	fmt.Printf("claim %s bound to %s (%s) in %s\n", sb.Claim, sb.Pod, sb.Origin, sb.Duration)

	res, err := sb.Exec(ctx, api.ExecuteRequest{Argv: []string{"python3", "-c", "print(6*7)"}}, os.Stdout, os.Stderr)
	if err != nil {
		panic(err)
	}
	fmt.Println("exit code", res.ExitCode)
}
