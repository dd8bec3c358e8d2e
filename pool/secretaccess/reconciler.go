package secretaccess

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"sandbox.io/injector/api/v1alpha1"
)

// Name is the name of the Role and RoleBinding in each namespace.
const Name = "sandbox-agent-pull-secrets"

// LabelManagedBy marks the Roles and RoleBindings this package keeps.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "sandbox-injector"
)

// DefaultResync is Options.Resync's default.
const DefaultResync = 10 * time.Minute

// Options configure the reconciler.
type Options struct {
	// Agent is the node agent's ServiceAccount (namespace and name); the
	// RoleBindings name it. Required.
	Agent types.NamespacedName
	// Resync is how often a namespace is checked again when nothing
	// changes, so a hand edit of a Role is undone; default DefaultResync.
	Resync time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Reconciler keeps one namespace's Role and RoleBinding.
type Reconciler struct {
	client client.Client
	// reader reads Roles and RoleBindings uncached: the reconciler touches
	// one namespace at a time, and a cache would hold every Role of the
	// cluster.
	reader client.Reader
	opts   Options
}

// Setup registers the reconciler with mgr. It watches SandboxPools and
// reconciles their namespaces. mgr's scheme must know sandbox.io/v1alpha1.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Agent.Name == "" || opts.Agent.Namespace == "" {
		return fmt.Errorf("pull secret access: the agent's ServiceAccount (namespace/name) is required")
	}
	if opts.Resync <= 0 {
		opts.Resync = DefaultResync
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Reconciler{client: mgr.GetClient(), reader: mgr.GetAPIReader(), opts: opts}
	toNamespace := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetNamespace()}}}
	})
	err := ctrl.NewControllerManagedBy(mgr).
		Named("sandbox-agent-pull-secrets").
		Watches(&v1alpha1.SandboxPool{}, toNamespace).
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the agent pull secret controller: %w", err)
	}
	return nil
}

// SecretNames lists, sorted and once each, the pull secrets that pools
// name.
func SecretNames(pools []v1alpha1.SandboxPool) []string {
	var names []string
	for _, p := range pools {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, s := range p.Spec.Template.ImagePullSecrets {
			if s.Name != "" && !slices.Contains(names, s.Name) {
				names = append(names, s.Name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// Reconcile makes the Role and RoleBinding of namespace req.Name match the
// pull secrets its pools name, deleting both when they name none.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ns := req.Name
	var pools v1alpha1.SandboxPoolList
	if err := r.client.List(ctx, &pools, client.InNamespace(ns)); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing pools of namespace %s: %w", ns, err)
	}
	res, err := r.grant(ctx, ns, SecretNames(pools.Items))
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		// A namespace being deleted refuses new objects, and its pools go
		// with it: nothing to grant, nothing to retry.
		return reconcile.Result{}, nil
	}
	return res, err
}

// grant makes the Role and RoleBinding of namespace ns let the agent read
// exactly names, deleting both when names is empty.
func (r *Reconciler) grant(ctx context.Context, ns string, names []string) (reconcile.Result, error) {
	if len(names) == 0 {
		for _, obj := range []client.Object{&rbacv1.RoleBinding{}, &rbacv1.Role{}} {
			if err := r.deleteOurs(ctx, ns, obj); err != nil {
				return reconcile.Result{}, err
			}
		}
		return reconcile.Result{}, nil
	}
	labels := map[string]string{LabelManagedBy: ManagedBy}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: ns, Labels: labels},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: names,
		}},
	}
	if err := r.apply(ctx, role, func(cur client.Object) bool {
		c := cur.(*rbacv1.Role)
		if equality.Semantic.DeepEqual(c.Rules, role.Rules) {
			return false
		}
		c.Rules = role.Rules
		return true
	}); err != nil {
		return reconcile.Result{}, err
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: ns, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: r.opts.Agent.Namespace, Name: r.opts.Agent.Name}},
	}
	if err := r.apply(ctx, binding, func(cur client.Object) bool {
		c := cur.(*rbacv1.RoleBinding)
		if equality.Semantic.DeepEqual(c.Subjects, binding.Subjects) {
			return false
		}
		c.Subjects = binding.Subjects
		return true
	}); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: r.opts.Resync}, nil
}

// apply creates want, or brings the existing object of its name back to it
// through fix (which reports whether it changed anything). An object of the
// name that this package does not manage is left alone, with an error.
func (r *Reconciler) apply(ctx context.Context, want client.Object, fix func(cur client.Object) bool) error {
	cur := want.DeepCopyObject().(client.Object)
	err := r.reader.Get(ctx, client.ObjectKeyFromObject(want), cur)
	if apierrors.IsNotFound(err) {
		if err := r.client.Create(ctx, want); err != nil {
			return fmt.Errorf("creating %T %s/%s: %w", want, want.GetNamespace(), want.GetName(), err)
		}
		r.opts.Logger.Info("agent pull secret access granted", "namespace", want.GetNamespace(), "kind", fmt.Sprintf("%T", want))
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %T %s/%s: %w", want, want.GetNamespace(), want.GetName(), err)
	}
	if cur.GetLabels()[LabelManagedBy] != ManagedBy {
		return fmt.Errorf("%T %s/%s exists and is not managed by %s: rename or delete it", want, want.GetNamespace(), want.GetName(), ManagedBy)
	}
	if !fix(cur) {
		return nil
	}
	if err := r.client.Update(ctx, cur); err != nil {
		return fmt.Errorf("updating %T %s/%s: %w", want, want.GetNamespace(), want.GetName(), err)
	}
	return nil
}

// deleteOurs deletes the object of Name in ns of obj's type if this package
// manages it.
func (r *Reconciler) deleteOurs(ctx context.Context, ns string, obj client.Object) error {
	err := r.reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: Name}, obj)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %T %s/%s: %w", obj, ns, Name, err)
	}
	if obj.GetLabels()[LabelManagedBy] != ManagedBy {
		return nil
	}
	if err := r.client.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting %T %s/%s: %w", obj, ns, Name, err)
	}
	r.opts.Logger.Info("agent pull secret access revoked", "namespace", ns, "kind", fmt.Sprintf("%T", obj))
	return nil
}
