package secretaccess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/testenv"
)

func TestSecretNames(t *testing.T) {
	t.Parallel()
	now := metav1.Now()
	pool := func(deleted bool, names ...string) v1alpha1.SandboxPool {
		p := v1alpha1.SandboxPool{}
		if deleted {
			p.DeletionTimestamp = &now
		}
		for _, n := range names {
			p.Spec.Template.ImagePullSecrets = append(p.Spec.Template.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
		}
		return p
	}
	got := SecretNames([]v1alpha1.SandboxPool{pool(false, "b", "a"), pool(false, "a", ""), pool(true, "gone")})
	if fmt.Sprint(got) != "[a b]" {
		t.Errorf("names %v, want [a b]: sorted, once each, none of a pool being deleted", got)
	}
}

// TestAgentReadsOnlyPoolPullSecrets runs the reconciler against a real API
// server and reads Secrets as the agent (impersonation): a pull secret a
// pool names is readable, every other Secret of the namespace and of other
// namespaces is not, and the access goes away with the pool.
func TestAgentReadsOnlyPoolPullSecrets(t *testing.T) {
	cfg, c := testenv.StartWithCRDs(t)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		// go test -count=N sets the controller up once per run in one
		// process; its name is unique per manager, not per process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	agent := types.NamespacedName{Namespace: "sandbox-system", Name: "agent"}
	if err := Setup(mgr, Options{Agent: agent}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("manager: %v", err)
		}
	})

	for _, ns := range []string{"sandbox-system", "team", "other"} {
		if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"regcred", "db-password"} {
			if err := c.Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	asAgent := rest.CopyConfig(cfg)
	asAgent.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:sandbox-system:agent",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:sandbox-system", "system:authenticated"}}
	ac, err := client.New(asAgent, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	readable := func(ns, name string) error {
		err := ac.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{})
		if apierrors.IsForbidden(err) {
			return errForbidden
		}
		return err
	}

	p := &v1alpha1.SandboxPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "py"},
		Spec: v1alpha1.SandboxPoolSpec{Template: v1alpha1.SandboxTemplate{
			Image: "python:3.13", ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
		}},
	}
	if err := c.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the agent reading the pool's pull secret", func() error { return readable("team", "regcred") })
	for _, s := range []types.NamespacedName{{Namespace: "team", Name: "db-password"}, {Namespace: "other", Name: "regcred"}, {Namespace: "sandbox-system", Name: "db-password"}} {
		if err := readable(s.Namespace, s.Name); !errors.Is(err, errForbidden) {
			t.Errorf("the agent reading Secret %s: %v, want forbidden", s, err)
		}
	}
	// Nothing to list or watch, even in the pool's namespace.
	if err := ac.List(t.Context(), &corev1.SecretList{}, client.InNamespace("team")); !apierrors.IsForbidden(err) {
		t.Errorf("the agent listing Secrets of team: %v, want forbidden", err)
	}

	if err := c.Delete(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the access revoked with the pool", func() error {
		if err := readable("team", "regcred"); err == nil {
			return errors.New("team/regcred is still readable, want forbidden")
		} else if !errors.Is(err, errForbidden) {
			return fmt.Errorf("reading team/regcred: %w, want forbidden", err)
		}
		return nil
	})

	// A namespace being deleted (envtest runs no namespace controller, so
	// it stays Terminating) refuses the Role's create: the reconcile ends
	// without an error or a resync instead of retrying until it is gone.
	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leaving"}}); err != nil {
		t.Fatal(err)
	}
	leaving := p.DeepCopy()
	leaving.ObjectMeta = metav1.ObjectMeta{Namespace: "leaving", Name: "py"}
	if err := c.Create(t.Context(), leaving); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the leaving namespace's RoleBinding", func() error {
		return c.Get(t.Context(), client.ObjectKey{Namespace: "leaving", Name: Name}, &rbacv1.RoleBinding{})
	})
	// The namespace first: from then on nothing is created in it, not even
	// by the running reconciler once the Role and RoleBinding are gone.
	if err := c.Delete(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leaving"}}); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []client.Object{&rbacv1.RoleBinding{}, &rbacv1.Role{}} {
		obj.SetNamespace("leaving")
		obj.SetName(Name)
		if err := c.Delete(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
	}
	direct := &Reconciler{client: c, reader: c, opts: Options{Agent: agent, Resync: DefaultResync, Logger: slog.Default()}}
	res, err := direct.Reconcile(t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Name: "leaving"}})
	if err != nil || !res.IsZero() {
		t.Errorf("reconciling a terminating namespace: %+v, %v; want done, no error", res, err)
	}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "leaving", Name: Name}, &rbacv1.Role{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Role in the terminating namespace: %v, want NotFound", err)
	}
}

var errForbidden = errors.New("forbidden")
