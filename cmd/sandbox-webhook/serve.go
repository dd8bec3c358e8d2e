package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

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

// serve runs the admission webhook and the controllers until ctx ends.
// They run in two managers: the webhook's, on every replica, drains after
// the signal (--shutdown-delay, --drain-timeout) until the API server has
// left it; the controllers' (the claim controller, leader-elected with
// --claims, and the isolation controllers) stops at the signal, so that
// another replica takes the lease at once rather than after the drain.
func serve(ctx context.Context, o *options, log *slog.Logger) error {
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	restCfg, err := kubeconfig.Load(o.kubeconfig, "sandbox-webhook/"+version.Version)
	if err != nil {
		return err
	}
	wcfg := o.config()
	if o.claims {
		keys, err := loadClaimKeys(ctx, restCfg, o, log)
		if err != nil {
			return err
		}
		wcfg.ClaimKeys = claimkey.NewRing(keys)
	}
	drain := &webhook.Drain{}
	webhookMgr, err := newWebhookManager(ctx, restCfg, o, wcfg, drain, log)
	if err != nil {
		return err
	}
	controllersMgr, err := newControllersManager(restCfg, o, wcfg, log)
	if err != nil {
		return err
	}
	log.Info("starting sandbox-webhook", "version", version.Version, "port", o.port, "runnerImage", o.runnerImage, "certMode", o.certMode, "claims", o.claims)
	return runManagers(ctx, webhookMgr, controllersMgr, func(signalled context.Context) context.Context {
		return drain.After(signalled, o.shutdownDelay, o.drainTimeout, log)
	})
}

// runManagers runs the controllers' manager until ctx ends and the
// webhook's until the context drained makes of ctx ends. When the
// controllers stop early with an error (a lost lease), the webhook drains
// as if signalled, and serve returns that error.
func runManagers(ctx context.Context, webhookMgr, controllersMgr manager.Manager, drained func(context.Context) context.Context) error {
	signalled, signal := context.WithCancel(ctx)
	defer signal()
	controllersDone := make(chan error, 1)
	go func() {
		err := controllersMgr.Start(signalled)
		if err != nil {
			err = fmt.Errorf("controllers: %w", err)
		}
		signal()
		controllersDone <- err
	}()
	err := webhookMgr.Start(drained(signalled))
	if err != nil {
		err = fmt.Errorf("webhook: %w", err)
	}
	signal()
	return errors.Join(<-controllersDone, err)
}

// newWebhookManager is the manager of the admission webhook, its
// certificate rotator (when it makes its own certificates), the metrics and
// the health probes.
func newWebhookManager(ctx context.Context, restCfg *rest.Config, o *options, wcfg webhook.Config, drain *webhook.Drain, log *slog.Logger) (manager.Manager, error) {
	mopts, rotator, err := managerOptions(o, drain, log)
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(restCfg, mopts)
	if err != nil {
		return nil, fmt.Errorf("creating the webhook manager: %w", err)
	}
	if rotator != nil {
		if err := rotator.SetupWithManager(mgr); err != nil {
			return nil, err
		}
	}
	var resolver webhook.Resolver
	if !o.disableImageLookups {
		resolver = entrypoint.NewResolver(entrypoint.Config{Insecure: splitList(o.insecureRegistries), AllowPrivate: o.registryPrivate})
	}
	if err := webhook.SetupWithManager(ctx, mgr, wcfg, webhook.SetupOptions{
		Resolver: resolver, Registerer: metrics.Registry, Logger: log, Drain: drain,
	}); err != nil {
		return nil, err
	}
	return mgr, nil
}

// newControllersManager is the manager of the claim controller (with
// --claims: every replica serves admissions, the elected one also binds
// claims) and the isolation controllers. It serves neither metrics (its
// controllers' go to the webhook manager's registry and endpoint) nor
// probes.
func newControllersManager(restCfg *rest.Config, o *options, wcfg webhook.Config, log *slog.Logger) (manager.Manager, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building scheme: %w", err)
	}
	mopts := manager.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	}
	if o.claims {
		electClaimLeader(&mopts, o)
	}
	mgr, err := ctrl.NewManager(restCfg, mopts)
	if err != nil {
		return nil, fmt.Errorf("creating the controllers manager: %w", err)
	}
	if o.claims {
		if err := controller.Setup(mgr, controller.Options{
			Keys:           wcfg.ClaimKeys,
			RunnerImage:    wcfg.RunnerImage,
			Concurrency:    o.claimConcurrency,
			FinishedTTL:    o.claimFinishedTTL,
			RelabelOnTake:  o.claimRelabelOnTake,
			ColdTimeout:    o.claimColdTimeout,
			UnheldKeyGrace: o.unheldKeyGrace(),
			Registerer:     metrics.Registry,
			Logger:         log.With("controller", "sandboxclaim"),
		}); err != nil {
			return nil, err
		}
	}
	if err := setupIsolation(mgr, &o.isolation, log); err != nil {
		return nil, err
	}
	if o.claims {
		kube, err := kubernetes.NewForConfig(restCfg)
		if err != nil {
			return nil, fmt.Errorf("building kubernetes client: %w", err)
		}
		keeper, err := newKeepClaimKeys(kube, o, wcfg.ClaimKeys, metrics.Registry, log)
		if err != nil {
			return nil, err
		}
		if err := mgr.Add(keeper); err != nil {
			return nil, fmt.Errorf("adding the claim key keeper: %w", err)
		}
	}
	return mgr, nil
}

// keepClaimKeys runs claimkey.Keep on every replica, leader or not (each
// one's webhook injects pool pods under the current key): a rotation in the
// claim key Secret switches the replica's webhook and, on the leader, its
// claim controller in place. The gauge sandbox_claim_keys names the keys
// the replica holds, so that one can see every replica has switched.
type keepClaimKeys struct {
	kube kubernetes.Interface
	o    *options
	ring *claimkey.Ring
	held *prometheus.GaugeVec
	log  *slog.Logger
}

func newKeepClaimKeys(kube kubernetes.Interface, o *options, ring *claimkey.Ring, reg prometheus.Registerer, log *slog.Logger) (*keepClaimKeys, error) {
	held := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sandbox_claim_keys",
		Help: "The claim keys this replica holds, by role (current: new pool pods are injected under it; previous: its warm pods stay claimable) and ID (a digest that does not reveal the key); 1 for each held key.",
	}, []string{"role", "id"})
	if err := reg.Register(held); err != nil {
		return nil, fmt.Errorf("registering the claim key metric: %w", err)
	}
	k := &keepClaimKeys{kube: kube, o: o, ring: ring, held: held, log: log}
	k.show(ring.Keys())
	return k, nil
}

func (k *keepClaimKeys) Start(ctx context.Context) error {
	k.ring.OnChange(ctx, func() { k.show(k.ring.Keys()) })
	claimkey.Keep(ctx, k.kube, k.o.releaseNamespace, k.o.claimKeySecret, k.ring, claimKeyInterval, k.log)
	return nil
}

// show sets the gauge to keys.
func (k *keepClaimKeys) show(keys claimkey.Keys) {
	k.held.Reset()
	k.held.WithLabelValues("current", keys.Current.ID()).Set(1)
	if keys.Previous != nil {
		k.held.WithLabelValues("previous", keys.Previous.ID()).Set(1)
	}
}

func (*keepClaimKeys) NeedLeaderElection() bool { return false }

// claimKeyInterval is how often each replica reads the claim key Secret
// (a variable for the tests).
var claimKeyInterval = claimkey.KeepInterval

// managerOptions are the webhook manager's options, and the
// certificate rotator when the webhook makes its own certificates. The
// webhook server counts its connections in drain.
func managerOptions(o *options, drain *webhook.Drain, log *slog.Logger) (manager.Options, *certs.Rotator, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return manager.Options{}, nil, fmt.Errorf("building scheme: %w", err)
	}
	serverOpts := webhook.ServerOptions{Port: o.port, CertDir: o.certDir, Drain: drain, Logger: log}
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
		WebhookServer:          webhook.NewServer(serverOpts),
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

// loadClaimKeys reads the claim key Secret, which both the webhook (pool
// pods' verifiers) and the claim controller need.
func loadClaimKeys(ctx context.Context, restCfg *rest.Config, o *options, log *slog.Logger) (claimkey.Keys, error) {
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return claimkey.Keys{}, fmt.Errorf("building kubernetes client: %w", err)
	}
	kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return claimkey.Load(kctx, kube, o.releaseNamespace, o.claimKeySecret, log)
}
