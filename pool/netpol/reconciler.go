package netpol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/runner/api"
)

// Options configure the reconciler.
type Options struct {
	// RunnerPort is the pods' port that ingress may reach: a port name or
	// number. Default: the name the webhook gives the runner's port,
	// api.PortName ("sandbox-runner").
	RunnerPort intstr.IntOrString
	// RunnerFrom are the sources that may reach RunnerPort: the claim
	// controller's pods and where claimants come from (the chart's
	// claims.network.runnerFrom). Empty admits no ingress at all.
	RunnerFrom []networkingv1.NetworkPolicyPeer
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// DefaultRunnerPort is Options.RunnerPort's default.
var DefaultRunnerPort = intstr.FromString(api.PortName)

func (o *Options) setDefaults() {
	if o.RunnerPort.Type == intstr.Int && o.RunnerPort.IntVal == 0 || o.RunnerPort.Type == intstr.String && o.RunnerPort.StrVal == "" {
		o.RunnerPort = DefaultRunnerPort
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Reconciler keeps each SandboxPool's NetworkPolicy as Policy says.
type Reconciler struct {
	client   client.Client
	opts     Options
	recorder events.EventRecorder
}

// ReasonInvalidNetwork is the Warning Event reason on a pool whose
// spec.network cannot become a NetworkPolicy.
const ReasonInvalidNetwork = "InvalidNetwork"

// Setup registers the reconciler with mgr: it watches SandboxPools and the
// NetworkPolicies they own. mgr's scheme must know sandbox.io/v1alpha1.
func Setup(mgr ctrl.Manager, opts Options) error {
	opts.setDefaults()
	r := &Reconciler{client: mgr.GetClient(), opts: opts, recorder: mgr.GetEventRecorder("sandbox-pool-netpol")}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("sandbox-pool-netpol").
		For(&v1alpha1.SandboxPool{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the pool NetworkPolicy controller: %w", err)
	}
	return nil
}

// Reconcile creates or updates the NetworkPolicy of one pool. A deleted
// pool's policy is left to the garbage collector (it is owned by the pool).
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var p v1alpha1.SandboxPool
	if err := r.client.Get(ctx, req.NamespacedName, &p); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if p.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	want, err := Policy(&p, r.opts.RunnerPort, r.opts.RunnerFrom)
	if err != nil {
		// The API validates the shape, not the CIDRs: say so on the pool
		// and wait for its next change.
		r.recorder.Eventf(&p, nil, corev1.EventTypeWarning, ReasonInvalidNetwork, "NetworkPolicy", "%s", err.Error())
		r.opts.Logger.Warn("pool network cannot become a NetworkPolicy", "namespace", p.Namespace, "pool", p.Name, "err", err)
		return reconcile.Result{}, reconcile.TerminalError(err)
	}
	np := &networkingv1.NetworkPolicy{}
	np.Name, np.Namespace = want.Name, want.Namespace
	op, err := controllerutil.CreateOrUpdate(ctx, r.client, np, func() error {
		if !np.CreationTimestamp.IsZero() && !metav1IsControlledBy(np, &p) && len(np.OwnerReferences) > 0 {
			return fmt.Errorf("%w: NetworkPolicy %s/%s is controlled by another object", errNotOurs, np.Namespace, np.Name)
		}
		if np.Labels == nil {
			np.Labels = map[string]string{}
		}
		for k, v := range want.Labels {
			np.Labels[k] = v
		}
		np.OwnerReferences = want.OwnerReferences
		if !equality.Semantic.DeepEqual(np.Spec, want.Spec) {
			np.Spec = want.Spec
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, errNotOurs) {
			r.recorder.Eventf(&p, nil, corev1.EventTypeWarning, ReasonInvalidNetwork, "NetworkPolicy", "%s", err.Error())
			return reconcile.Result{}, reconcile.TerminalError(err)
		}
		// Conflict: a write raced ours. AlreadyExists: our own create is
		// not in the cache yet. Both are settled by the next pass.
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			return reconcile.Result{Requeue: true}, nil
		}
		// A namespace being deleted refuses new objects; the pool goes
		// with it.
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("writing NetworkPolicy %s/%s of pool %s: %w", np.Namespace, np.Name, p.Name, err)
	}
	if op != controllerutil.OperationResultNone {
		r.opts.Logger.Info("pool NetworkPolicy written", "namespace", p.Namespace, "pool", p.Name, "networkPolicy", np.Name, "operation", string(op))
	}
	return reconcile.Result{}, nil
}

var errNotOurs = errors.New("name taken")

// metav1IsControlledBy reports whether obj's controller is pool p.
func metav1IsControlledBy(obj client.Object, p *v1alpha1.SandboxPool) bool {
	for _, o := range obj.GetOwnerReferences() {
		if o.Controller != nil && *o.Controller {
			return o.UID == p.UID
		}
	}
	return false
}
