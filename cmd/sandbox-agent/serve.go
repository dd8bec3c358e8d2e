package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"sandbox.io/injector/agent"
	"sandbox.io/injector/internal/kubeconfig"
	"sandbox.io/injector/internal/version"
)

var labelSyncs = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "sandbox_agent_image_volume_label_syncs_total",
	Help: "Checks of the runtime's image volume support, by result (unchanged, changed, error).",
}, []string{"result"})

func init() { metrics.Registry.MustRegister(labelSyncs) }

// serve runs the agent until ctx ends.
func serve(ctx context.Context, o *options, log *slog.Logger) error {
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	cfg, err := kubeconfig.Load(o.kubeconfig, "sandbox-agent/"+version.Version)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Metrics:                metricsserver.Options{BindAddress: o.metricsBindAddress},
		HealthProbeBindAddress: o.healthProbeAddress,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	conn, err := grpc.NewClient("unix://"+o.criSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connecting to the CRI socket %s: %w", o.criSocket, err)
	}
	defer conn.Close()
	// A direct client: the agent reads its one node now and then, so it
	// needs no cache (nor the right to list and watch every node).
	direct, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	labeler := &agent.ImageVolumeLabeler{
		NodeName: o.nodeName,
		Runtime:  runtimeapi.NewRuntimeServiceClient(conn),
		Client:   direct,
		Recorder: mgr.GetEventRecorder("sandbox-agent"),
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		labelLoop(ctx, labeler, o.labelInterval, log)
		return nil
	})); err != nil {
		return fmt.Errorf("adding the labeler: %w", err)
	}
	if err := addPrePuller(mgr, cfg, o, conn, direct, log); err != nil {
		return err
	}
	if err := addPools(mgr, o, log); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding readiness check: %w", err)
	}
	log.Info("starting sandbox-agent", "version", version.Version, "node", o.nodeName, "criSocket", o.criSocket)
	return mgr.Start(ctx)
}

// labelLoop syncs the label now and then every interval; a failure is
// logged and retried on the next tick.
func labelLoop(ctx context.Context, l *agent.ImageVolumeLabeler, every time.Duration, log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		changed, err := l.Sync(ctx)
		switch {
		case err != nil:
			labelSyncs.WithLabelValues("error").Inc()
			log.Warn("checking image volume support", "node", l.NodeName, "err", err)
		case changed:
			labelSyncs.WithLabelValues("changed").Inc()
			log.Info("node image volume label updated", "node", l.NodeName)
		default:
			labelSyncs.WithLabelValues("unchanged").Inc()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
