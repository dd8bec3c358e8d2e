package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"sandbox.io/injector/certs"
	"sandbox.io/injector/claim/controller"
	"sandbox.io/injector/internal/claimkey"
	"sandbox.io/injector/internal/kubeconfig"
	"sandbox.io/injector/internal/version"
	"sandbox.io/injector/webhook"
	"sandbox.io/injector/webhook/entrypoint"
)

// claimLeaseName is the Lease the replicas elect the claim controller's
// leader with.
const claimLeaseName = "sandbox-injector-claims"

// serve runs the manager with the admission webhook until ctx ends, then
// drains for --shutdown-delay before it stops.
func serve(ctx context.Context, o *options, log *slog.Logger) error {
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	restCfg, err := kubeconfig.Load(o.kubeconfig, "sandbox-webhook/"+version.Version)
	if err != nil {
		return err
	}
	mopts, rotator, err := managerOptions(o, log)
	if err != nil {
		return err
	}
	wcfg := o.config()
	if o.claims {
		// Every replica serves admissions; the elected one also runs the
		// claim controller.
		electClaimLeader(&mopts, o)
		if wcfg.ClaimKey, err = loadClaimKey(ctx, restCfg, o); err != nil {
			return err
		}
	}
	mgr, err := ctrl.NewManager(restCfg, mopts)
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	drain := &webhook.Drain{}
	if err := setupRunnables(ctx, mgr, o, wcfg, rotator, drain, log); err != nil {
		return err
	}
	log.Info("starting sandbox-webhook", "version", version.Version, "port", o.port, "runnerImage", o.runnerImage, "certMode", o.certMode, "claims", o.claims)
	return mgr.Start(drainAfter(ctx, drain, o.shutdownDelay, log))
}

// drainAfter is a context that ends delay after ctx does; meanwhile drain
// is started, so that the webhook answers on while the API server moves
// its connections to other replicas.
func drainAfter(ctx context.Context, drain *webhook.Drain, delay time.Duration, log *slog.Logger) context.Context {
	if delay <= 0 {
		return ctx
	}
	run, stop := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		<-ctx.Done()
		drain.Start()
		log.Info("stopping: draining connections before the server closes", "delay", delay)
		time.Sleep(delay)
		stop()
	}()
	return run
}

// managerOptions are the manager's options but leader election, and the
// certificate rotator when the webhook makes its own certificates.
func managerOptions(o *options, log *slog.Logger) (manager.Options, *certs.Rotator, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return manager.Options{}, nil, fmt.Errorf("building scheme: %w", err)
	}
	serverOpts := crwebhook.Options{Port: o.port, CertDir: o.certDir}
	var rotator *certs.Rotator
	if o.certMode == certModeSelf {
		// The certificate comes from memory, kept by the rotator; CertDir is unused.
		var err error
		rotator, err = certs.New(o.certsConfig(), certs.Options{Registerer: metrics.Registry, Logger: log})
		if err != nil {
			return manager.Options{}, nil, err
		}
		serverOpts.TLSOpts = []func(*tls.Config){rotator.TLSOpt}
	}
	return manager.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: o.metricsBindAddress},
		HealthProbeBindAddress: o.healthProbeAddress,
		WebhookServer:          crwebhook.NewServer(serverOpts),
	}, rotator, nil
}

// electClaimLeader makes the replicas elect the one that runs the claim
// controller, on the Lease claimLeaseName.
func electClaimLeader(mopts *manager.Options, o *options) {
	lease := o.leaderLeaseDuration
	renew := lease * 2 / 3
	retry := lease / 5
	mopts.LeaderElection = true
	mopts.LeaderElectionID = claimLeaseName
	mopts.LeaderElectionNamespace = o.releaseNamespace
	mopts.LeaderElectionReleaseOnCancel = true
	mopts.LeaseDuration, mopts.RenewDeadline, mopts.RetryPeriod = &lease, &renew, &retry
}

// loadClaimKey reads the claim key Secret, which both the webhook (pool
// pods' verifiers) and the claim controller need.
func loadClaimKey(ctx context.Context, restCfg *rest.Config, o *options) (claimkey.Key, error) {
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("building kubernetes client: %w", err)
	}
	kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return claimkey.Load(kctx, kube, o.releaseNamespace, o.claimKeySecret)
}

// setupRunnables adds to mgr the claim controller (with --claims), the
// certificate rotator (when there is one), the admission webhook and the
// isolation controllers.
func setupRunnables(ctx context.Context, mgr manager.Manager, o *options, wcfg webhook.Config, rotator *certs.Rotator, drain *webhook.Drain, log *slog.Logger) error {
	if o.claims {
		if err := controller.Setup(mgr, controller.Options{
			Key:         wcfg.ClaimKey,
			RunnerImage: wcfg.RunnerImage,
			Concurrency: o.claimConcurrency,
			FinishedTTL: o.claimFinishedTTL,
			ColdTimeout: o.claimColdTimeout,
			Registerer:  metrics.Registry,
			Logger:      log.With("controller", "sandboxclaim"),
		}); err != nil {
			return err
		}
	}
	if rotator != nil {
		if err := rotator.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	var resolver webhook.Resolver
	if !o.disableImageLookups {
		resolver = entrypoint.NewResolver(entrypoint.Config{Insecure: splitList(o.insecureRegistries), AllowPrivate: o.registryPrivate})
	}
	if err := webhook.SetupWithManager(ctx, mgr, wcfg, webhook.SetupOptions{
		Resolver: resolver, Registerer: metrics.Registry, Logger: log, Drain: drain,
	}); err != nil {
		return err
	}
	return setupIsolation(mgr, &o.isolation, log)
}
