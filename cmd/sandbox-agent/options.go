package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"sandbox.io/injector/internal/logging"
)

// options are the command line of sandbox-agent; every flag can also be set
// through its SANDBOX_* environment variable (the chart sets
// SANDBOX_NODE_NAME from the pod's spec.nodeName).
type options struct {
	kubeconfig         string
	nodeName           string
	criSocket          string
	labelInterval      time.Duration
	metricsBindAddress string
	healthProbeAddress string
	logLevel           string
	level              slog.Level     // parsed from logLevel by Validate
	prepull            prepullOptions // prepull.go
	pools              poolOptions    // pools.go
}

func (o *options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to a kubeconfig; empty uses KUBECONFIG or the in-cluster configuration.")
	fs.StringVar(&o.nodeName, "node-name", "", "The node this agent runs on (required).")
	fs.StringVar(&o.criSocket, "cri-socket", "/run/containerd/containerd.sock", "The node's CRI socket.")
	fs.DurationVar(&o.labelInterval, "label-interval", time.Minute, "How often the runtime's image volume support is checked.")
	fs.StringVar(&o.metricsBindAddress, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 turns it off.")
	fs.StringVar(&o.healthProbeAddress, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz.")
	fs.StringVar(&o.logLevel, "log-level", "info", "Log level: debug, info, warn or error.")
	o.prepull.addFlags(fs)
	o.pools.addFlags(fs)
}

func (o *options) Validate() error {
	var errs []error
	if o.nodeName == "" {
		errs = append(errs, errors.New("--node-name is required (the chart sets it from spec.nodeName)"))
	}
	if o.criSocket == "" {
		errs = append(errs, errors.New("--cri-socket is required"))
	}
	if o.labelInterval < time.Second {
		errs = append(errs, fmt.Errorf("--label-interval %s is under 1s", o.labelInterval))
	}
	if l, err := logging.ParseLevel(o.logLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	} else {
		o.level = l
	}
	errs = append(errs, o.prepull.validate())
	errs = append(errs, o.pools.validate())
	return errors.Join(errs...)
}

// LogLevel is the level Validate parsed.
func (o *options) LogLevel() slog.Level { return o.level }
