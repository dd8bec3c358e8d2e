package claimbench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sandbox.io/injector/internal/cpuacct"
)

// PeerRun is agent-sandbox's side of `make bench-claim`.
type PeerRun struct {
	Binary     string         // agent-sandbox-controller
	CRDs       string         // the directory of its CRDs (bin/crds/agent-sandbox)
	Kubeconfig string         // the cluster's, for the controller process
	Namespace  string         // where the template, pool and claims go
	Pod        corev1.PodSpec // the warm sandboxes' pod
	Sequential int            // claims one after another (default 50)
	Burst      int            // claims at once (default 20)
	PoolSize   int            // warm sandboxes kept for the sequential claims (default 10)
	Log        io.Writer      // the controller's output (default discarded)
	// SequentialCPU and BurstCPU, when set, count the machine's CPU use
	// during the timed claims of each phase.
	SequentialCPU, BurstCPU *cpuacct.Account
}

// Run installs the CRDs, starts the controller, makes a warm pool, and
// returns the sequential and burst claim latencies (created to Ready). The
// controller is stopped and the CRDs are uninstalled (their objects with
// them) before it returns: its SandboxClaim kind would make `kubectl get
// sandboxclaims` on the cluster ambiguous, and kubectl would pick its kind.
func (r PeerRun) Run(ctx context.Context, cfg *rest.Config) (seq, burst []time.Duration, err error) {
	if r.Sequential == 0 {
		r.Sequential = 50
	}
	if r.Burst == 0 {
		r.Burst = 20
	}
	if r.PoolSize == 0 {
		r.PoolSize = 10
	}
	if r.Log == nil {
		r.Log = io.Discard
	}
	crds := envtest.CRDInstallOptions{Paths: []string{r.CRDs}, ErrorIfPathMissing: true}
	if _, err := envtest.InstallCRDs(cfg, crds); err != nil {
		return nil, nil, fmt.Errorf("installing agent-sandbox's CRDs from %s: %w", r.CRDs, err)
	}
	defer func() {
		if uerr := envtest.UninstallCRDs(cfg, crds); uerr != nil && err == nil {
			err = fmt.Errorf("uninstalling agent-sandbox's CRDs: %w", uerr)
		}
	}()
	proc, err := Start("agent-sandbox-controller", r.Binary, ControllerArgs, []string{"KUBECONFIG=" + r.Kubeconfig}, r.Log)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if stopErr := proc.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	a, err := NewAgentSandbox(cfg)
	if err != nil {
		return nil, nil, err
	}
	const pool = "busybox"
	if err := a.CreatePool(ctx, r.Namespace, pool, r.Pod, int32(r.PoolSize)); err != nil {
		return nil, nil, err
	}
	ready := func(n int) error {
		if exited, perr := proc.Exited(); exited {
			return fmt.Errorf("agent-sandbox's controller exited: %w", perr)
		}
		return a.WaitReady(ctx, r.Namespace, pool, int64(n), 3*time.Minute)
	}
	// Sequential: each claim finds the pool full, as ours does.
	for i := range r.Sequential {
		if err := ready(r.PoolSize); err != nil {
			return seq, nil, fmt.Errorf("before claim %d: %w", i+1, err)
		}
		var d time.Duration
		err := r.SequentialCPU.During(func() (err error) {
			_, d, err = a.Claim(ctx, r.Namespace, pool, time.Minute)
			return err
		})
		if err != nil {
			return seq, nil, fmt.Errorf("claim %d: %w", i+1, err)
		}
		seq = append(seq, d)
	}
	if err := a.ScalePool(ctx, r.Namespace, pool, int32(r.Burst)); err != nil {
		return seq, nil, err
	}
	if err := ready(r.Burst); err != nil {
		return seq, nil, fmt.Errorf("before the burst: %w", err)
	}
	err = r.BurstCPU.During(func() (err error) {
		burst, err = Burst(ctx, r.Burst, func(ctx context.Context) (time.Duration, error) {
			_, d, err := a.Claim(ctx, r.Namespace, pool, time.Minute)
			return d, err
		})
		return err
	})
	return seq, burst, err
}

// Burst starts n claims at once (released by one gate) and returns their
// latencies; the first error is returned after all have ended.
func Burst(ctx context.Context, n int, claim func(context.Context) (time.Duration, error)) ([]time.Duration, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		out   []time.Duration
		first error
	)
	gate := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-gate
			d, err := claim(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			out = append(out, d)
		})
	}
	close(gate)
	wg.Wait()
	if first != nil {
		return out, fmt.Errorf("burst of %d claims: %w", n, first)
	}
	return out, nil
}
