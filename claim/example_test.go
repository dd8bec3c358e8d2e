package claim_test

import (
	"context"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
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
	claimer, err := claim.New(cfg, claim.Config{
		Transport:  claim.TransportDirect, // inside the cluster; TransportProxy from outside
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		panic(err)
	}
	sb, err := claimer.Claim(ctx, "sandboxes", "python", claim.Options{
		Env: map[string]string{"API_KEY": "only this claimant sees it"},
	})
	if err != nil {
		panic(err)
	}
	defer claimer.Release(ctx, sb.Namespace, sb.Pod)
	fmt.Printf("claimed %s (%s) in %s\n", sb.Pod, sb.Origin, sb.Timings.Total)

	res, err := sb.Exec(ctx, api.ExecuteRequest{Argv: []string{"python3", "-c", "print(6*7)"}}, os.Stdout, os.Stderr)
	if err != nil {
		panic(err)
	}
	fmt.Println("exit code", res.ExitCode)
}
