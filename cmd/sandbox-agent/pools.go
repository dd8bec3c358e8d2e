package main

import (
	"flag"
	"fmt"
	"log/slog"

	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"sandbox.io/injector/agent"
)

// poolOptions are the warm pools' flags.
type poolOptions struct {
	enabled    bool
	maxCreates int
}

// maxPoolCreates bounds --pool-max-creates: SandboxPool's podsPerNode is at
// most 100, so a larger batch would be no batch at all.
const maxPoolCreates = 100

func (o *poolOptions) addFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.enabled, "pools", true, "Keep the warm pods of every SandboxPool on this node.")
	fs.IntVar(&o.maxCreates, "pool-max-creates", 5, "The most warm pods of one pool that may be starting (created, not yet Ready) on this node at once; a short pool is refilled in batches of this size.")
}

func (o *poolOptions) validate() error {
	if o.maxCreates < 1 || o.maxCreates > maxPoolCreates {
		return fmt.Errorf("--pool-max-creates %d is not between 1 and %d", o.maxCreates, maxPoolCreates)
	}
	return nil
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
		Metrics:     m,
		Log:         log.With("component", "pools"),
	})
	return err
}
