package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"sandbox.io/injector/certs"
	"sandbox.io/injector/internal/kubeconfig"
	"sandbox.io/injector/internal/version"
	"sandbox.io/injector/webhook"
	"sandbox.io/injector/webhook/entrypoint"
)

// serve runs the manager with the admission webhook until ctx ends.
func serve(ctx context.Context, o *options, log *slog.Logger) error {
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	restCfg, err := kubeconfig.Load(o.kubeconfig, "sandbox-webhook/"+version.Version)
	if err != nil {
		return err
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	serverOpts := crwebhook.Options{Port: o.port, CertDir: o.certDir}
	var rotator *certs.Rotator
	if o.certMode == certModeSelf {
		// The certificate comes from memory, kept by the rotator; CertDir is unused.
		rotator, err = certs.New(o.certsConfig(), certs.Options{Registerer: metrics.Registry, Logger: log})
		if err != nil {
			return err
		}
		serverOpts.TLSOpts = []func(*tls.Config){rotator.TLSOpt}
	}
	mgr, err := ctrl.NewManager(restCfg, manager.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: o.metricsBindAddress},
		HealthProbeBindAddress: o.healthProbeAddress,
		WebhookServer:          crwebhook.NewServer(serverOpts),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	if rotator != nil {
		if err := rotator.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	var resolver webhook.Resolver
	if !o.disableImageLookups {
		resolver = entrypoint.NewResolver(entrypoint.Config{Insecure: splitList(o.insecureRegistries)})
	}
	if err := webhook.SetupWithManager(ctx, mgr, o.config(), webhook.SetupOptions{
		Resolver: resolver, Registerer: metrics.Registry, Logger: log,
	}); err != nil {
		return err
	}
	if err := setupIsolation(mgr, &o.isolation, log); err != nil {
		return err
	}
	log.Info("starting sandbox-webhook", "version", version.Version, "port", o.port, "runnerImage", o.runnerImage, "certMode", o.certMode)
	return mgr.Start(ctx)
}
