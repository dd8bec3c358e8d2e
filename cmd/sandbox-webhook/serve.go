package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sandbox.io/injector/internal/version"
	"sandbox.io/injector/webhook"
	"sandbox.io/injector/webhook/entrypoint"
)

// serve runs the manager with the admission webhook until ctx ends.
func serve(ctx context.Context, o *options, log *slog.Logger) error {
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	restCfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	restCfg.UserAgent = "sandbox-webhook/" + version.Version

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	mgr, err := ctrl.NewManager(restCfg, manager.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: o.metricsBindAddress},
		HealthProbeBindAddress: o.healthProbeAddress,
		WebhookServer:          crwebhook.NewServer(crwebhook.Options{Port: o.port, CertDir: o.certDir}),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	if err := setUp(ctx, mgr, o, log); err != nil {
		return err
	}
	log.Info("starting sandbox-webhook", "version", version.Version, "port", o.port, "runnerImage", o.runnerImage)
	return mgr.Start(ctx)
}

// setUp registers the handler, its informer and the probes on mgr.
func setUp(ctx context.Context, mgr manager.Manager, o *options, log *slog.Logger) error {
	// Start the namespace informer with the manager, not on the first
	// admission, so that the first pod does not wait for a list.
	if _, err := mgr.GetCache().GetInformer(ctx, &corev1.Namespace{}); err != nil {
		return fmt.Errorf("starting namespace informer: %w", err)
	}
	var resolver webhook.Resolver
	if !o.disableImageLookups {
		resolver = entrypoint.NewResolver(entrypoint.Config{Insecure: splitList(o.insecureRegistries)})
	}
	h, err := webhook.NewHandler(o.config(), webhook.HandlerOptions{
		Namespaces: mgr.GetClient(),
		Secrets:    mgr.GetAPIReader(),
		Resolver:   resolver,
		Metrics:    webhook.NewMetrics(metrics.Registry),
		Logger:     log,
	})
	if err != nil {
		return err
	}
	srv := mgr.GetWebhookServer()
	srv.Register(webhook.Path, webhook.LimitRequests(&admission.Webhook{Handler: h}))
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	// Ready only once the server answers TLS with a loaded certificate.
	if err := mgr.AddReadyzCheck("webhook", srv.StartedChecker()); err != nil {
		return fmt.Errorf("adding readiness check: %w", err)
	}
	return nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		cfg, err := ctrl.GetConfig()
		if err != nil {
			return nil, fmt.Errorf("loading kubernetes client configuration: %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}
