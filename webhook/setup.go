package webhook

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sandbox.io/injector/api/v1alpha1"
)

// SetupOptions are the optional parts of SetupWithManager.
type SetupOptions struct {
	// Resolver reads image commands; nil turns lookups off.
	Resolver Resolver
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Logger: nil discards.
	Logger *slog.Logger
	// Drain, when set, closes every connection after its answer once
	// started, and fails /readyz: the caller starts it when the pod is
	// told to stop and stops the manager after a delay.
	Drain *Drain
}

// SetupWithManager registers the admission handler at Path on mgr's webhook
// server, starts the namespace informer with the manager (so the first pod
// does not wait for a list), and adds /healthz and /readyz checks; /readyz
// passes only once the server answers TLS with a loaded certificate.
func SetupWithManager(ctx context.Context, mgr manager.Manager, cfg Config, opts SetupOptions) error {
	if _, err := mgr.GetCache().GetInformer(ctx, &corev1.Namespace{}); err != nil {
		return fmt.Errorf("starting namespace informer: %w", err)
	}
	var nodes NodeLookup
	if cfg.Method != v1alpha1.MethodCopy {
		tracker, err := trackNodes(ctx, mgr)
		if err != nil {
			return err
		}
		nodes = tracker
	}
	h, err := NewHandler(cfg, HandlerOptions{
		Nodes:      nodes,
		Namespaces: mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		Resolver:   opts.Resolver,
		Metrics:    NewMetrics(opts.Registerer),
		Logger:     opts.Logger,
	})
	if err != nil {
		return err
	}
	srv := mgr.GetWebhookServer()
	handler := LimitRequests(&admission.Webhook{Handler: h})
	if opts.Drain != nil {
		handler = opts.Drain.Wrap(handler)
		if err := mgr.AddReadyzCheck("drain", opts.Drain.Checker); err != nil {
			return fmt.Errorf("adding readiness check: %w", err)
		}
	}
	srv.Register(Path, handler)
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook", srv.StartedChecker()); err != nil {
		return fmt.Errorf("adding readiness check: %w", err)
	}
	return nil
}

// trackNodes feeds a NodeTracker from the manager's node informer.
func trackNodes(ctx context.Context, mgr manager.Manager) (*NodeTracker, error) {
	inf, err := mgr.GetCache().GetInformer(ctx, &corev1.Node{})
	if err != nil {
		return nil, fmt.Errorf("starting node informer: %w", err)
	}
	t := NewNodeTracker()
	update := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			t.Update(n)
		}
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, obj any) { update(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				t.Delete(n.Name)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watching nodes: %w", err)
	}
	return t, nil
}
