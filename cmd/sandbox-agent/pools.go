package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"sandbox.io/injector/agent"
)

// poolOptions are the warm pools' flags.
type poolOptions struct {
	enabled     bool
	maxCreates  int
	stuckAfter  time.Duration
	refillDelay time.Duration
}

// maxRefillDelay bounds --pool-refill-delay: a pool left short longer than
// that serves claims cold for no gain.
const maxRefillDelay = 10 * time.Second

// maxPoolCreates bounds --pool-max-creates: SandboxPool's podsPerNode is at
// most 100, so a larger batch would be no batch at all.
const maxPoolCreates = 100

func (o *poolOptions) addFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.enabled, "pools", true, "Keep the warm pods of every SandboxPool on this node.")
	fs.DurationVar(&o.stuckAfter, "pool-stuck-after", 10*time.Minute, "Replace a warm pod that has not been Ready for this long (its runner crash-loops, or it never started); 0 never does.")
	fs.DurationVar(&o.refillDelay, "pool-refill-delay", 500*time.Millisecond, "How long a pool found short on this node (warm pods claimed) waits before its refill starts, so that starting pods does not take the CPU the claims still binding need; the pods taken meanwhile are refilled together. 0 refills at once.")
	fs.IntVar(&o.maxCreates, "pool-max-creates", 5, "The most warm pods of one pool that may be starting (created, not yet Ready) on this node at once; a short pool is refilled in batches of this size.")
}

func (o *poolOptions) validate() error {
	var errs []error
	if o.maxCreates < 1 || o.maxCreates > maxPoolCreates {
		errs = append(errs, fmt.Errorf("--pool-max-creates %d is not between 1 and %d", o.maxCreates, maxPoolCreates))
	}
	if o.refillDelay < 0 || o.refillDelay > maxRefillDelay {
		errs = append(errs, fmt.Errorf("--pool-refill-delay %s is not between 0 and %s", o.refillDelay, maxRefillDelay))
	}
	if err := agent.CheckStuckAfter(o.stuckAfter); err != nil {
		errs = append(errs, fmt.Errorf("--pool-stuck-after %w", err))
	}
	return errors.Join(errs...)
}

// addPools adds the warm pool reconciler to mgr, with its metrics on
// controller-runtime's registry, unless --pools=false.
func addPools(mgr manager.Manager, o *options, log *slog.Logger) error {
	if !o.pools.enabled {
		log.Info("warm pools are off (--pools=false)")
		return nil
	}
	m := agent.NewPoolMetrics()
	if err := m.Register(metrics.Registry); err != nil {
		return err
	}
	_, err := agent.SetupPools(mgr, agent.PoolConfig{
		NodeName:    o.nodeName,
		MaxStarting: o.pools.maxCreates,
		RunnerImage: o.prepull.runnerImage,
		StuckAfter:  stuckAfter(o.pools.stuckAfter),
		RefillDelay: refillDelay(o.pools.refillDelay),
		Metrics:     m,
		Log:         log.With("component", "pools"),
	})
	return err
}

// refillDelay maps the flag's 0 (at once) to PoolConfig's negative.
func refillDelay(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// stuckAfter maps the flag's 0 (off) to PoolConfig's negative.
func stuckAfter(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
