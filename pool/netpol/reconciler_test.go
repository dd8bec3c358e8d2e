package netpol

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/testenv"
)

// TestReconcilerKeepsPolicies runs the reconciler against a real API
// server: a pool gets its policy, owned by it; a change of the pool's
// network and a hand edit of the policy are both brought back to what the
// pool says.
func TestReconcilerKeepsPolicies(t *testing.T) {
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
	if err := Setup(mgr, Options{RunnerFrom: []networkingv1.NetworkPolicyPeer{controllerPeer}}); err != nil {
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

	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}); err != nil {
		t.Fatal(err)
	}
	p := testPool()
	p.UID = ""
	if err := c.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if p.Spec.Network.Egress != v1alpha1.EgressDeny {
		t.Errorf("a pool created without spec.network has egress %q, want the default Deny", p.Spec.Network.Egress)
	}
	key := client.ObjectKey{Namespace: "team", Name: Name("py")}
	waitPolicy := func(what string, check func(*networkingv1.NetworkPolicy) error) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, what, func() error {
			var np networkingv1.NetworkPolicy
			if err := c.Get(t.Context(), key, &np); err != nil {
				return err
			}
			return check(&np)
		})
	}
	waitPolicy("the pool's policy", func(np *networkingv1.NetworkPolicy) error {
		if o := np.OwnerReferences; len(o) != 1 || o[0].UID != p.UID || o[0].Kind != "SandboxPool" || !*o[0].Controller {
			return fmt.Errorf("owner references %+v, want the pool as controller", o)
		}
		if len(np.Spec.Egress) != 1 || len(np.Spec.Egress[0].Ports) != 2 {
			return fmt.Errorf("egress %+v, want DNS only", np.Spec.Egress)
		}
		if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) != 1 {
			return fmt.Errorf("ingress %+v, want the runner port from the controller", np.Spec.Ingress)
		}
		return nil
	})

	// The pool's network changes: the policy follows.
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Network.Allow = []v1alpha1.EgressRule{{CIDR: "192.0.2.0/24", Ports: []v1alpha1.EgressPort{{Port: 443}}}}
	if err := c.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	waitPolicy("the allow rule", func(np *networkingv1.NetworkPolicy) error {
		if len(np.Spec.Egress) != 2 || np.Spec.Egress[1].To[0].IPBlock.CIDR != "192.0.2.0/24" {
			return fmt.Errorf("egress %+v, want DNS and 192.0.2.0/24:443", np.Spec.Egress)
		}
		return nil
	})

	// Someone opens the policy by hand: it is closed again.
	var np networkingv1.NetworkPolicy
	if err := c.Get(t.Context(), key, &np); err != nil {
		t.Fatal(err)
	}
	np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
	if err := c.Update(t.Context(), &np); err != nil {
		t.Fatal(err)
	}
	waitPolicy("the hand edit undone", func(np *networkingv1.NetworkPolicy) error {
		if len(np.Spec.Egress) != 2 || len(np.Spec.Ingress[0].From) != 1 {
			return fmt.Errorf("egress %+v ingress %+v, want the pool's", np.Spec.Egress, np.Spec.Ingress)
		}
		return nil
	})

	// Egress Allow: one rule admitting everything.
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Network.Egress = v1alpha1.EgressAllow
	if err := c.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	waitPolicy("egress allowed", func(np *networkingv1.NetworkPolicy) error {
		if len(np.Spec.Egress) != 1 || len(np.Spec.Egress[0].To) != 0 || len(np.Spec.Egress[0].Ports) != 0 {
			return fmt.Errorf("egress %+v, want everything", np.Spec.Egress)
		}
		return nil
	})

	// A deleted policy comes back (the garbage collector, absent here,
	// removes it with its pool).
	if err := c.Delete(t.Context(), &np); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	waitPolicy("the policy recreated", func(*networkingv1.NetworkPolicy) error { return nil })

	// A pool in a namespace being deleted (envtest has no namespace
	// controller, so it stays Terminating): the API refuses the policy's
	// create, and the reconcile ends without an error instead of retrying
	// until the namespace is gone.
	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leaving"}}); err != nil {
		t.Fatal(err)
	}
	leaving := testPool()
	leaving.UID, leaving.Namespace = "", "leaving"
	if err := c.Create(t.Context(), leaving); err != nil {
		t.Fatal(err)
	}
	leavingKey := client.ObjectKey{Namespace: "leaving", Name: Name("py")}
	testenv.Eventually(t, 30*time.Second, "the leaving pool's policy", func() error {
		return c.Get(t.Context(), leavingKey, &networkingv1.NetworkPolicy{})
	})
	// The namespace first: from then on nothing is created in it, not even
	// by the running reconciler once the policy is gone.
	if err := c.Delete(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leaving"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(t.Context(), &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: leavingKey.Namespace, Name: leavingKey.Name}}); err != nil {
		t.Fatal(err)
	}
	direct := &Reconciler{client: c, opts: Options{RunnerFrom: []networkingv1.NetworkPolicyPeer{controllerPeer}}, recorder: mgr.GetEventRecorder("test")}
	direct.opts.setDefaults()
	res, err := direct.Reconcile(t.Context(), reconcile.Request{NamespacedName: client.ObjectKeyFromObject(leaving)})
	if err != nil || !res.IsZero() {
		t.Errorf("reconciling a pool in a terminating namespace: %+v, %v; want done, no error", res, err)
	}
	var gone networkingv1.NetworkPolicy
	if err := c.Get(t.Context(), leavingKey, &gone); !apierrors.IsNotFound(err) {
		t.Errorf("the policy in the terminating namespace: %v, want NotFound", err)
	}
}
