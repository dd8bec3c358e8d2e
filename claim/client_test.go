package claim_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
	"sandbox.io/injector/internal/claimtest"
	"sandbox.io/injector/runner/api"
)

// TestClaim drives the client against a real API server and the claim
// controller: a claim it names itself binds and runs with its env; a name
// of a claim deleted before binds to the new claim; a claim that cannot
// bind is refused with the reason and deleted; a name that is taken is
// refused without touching the claim that holds it.
func TestClaim(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{})
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "python", 3)
	for range 3 {
		e.WarmPod(p, "node-a")
	}
	e.WaitPoolReady(p, 3)
	cl, err := claim.New(e.Config, claim.Config{Transport: claim.TransportDirect})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	t.Run("a generated name binds and runs with the claim's env", func(t *testing.T) {
		sb, err := cl.Claim(ctx, claim.Request{Namespace: ns, Pool: "python", Env: map[string]string{"GREETING": "hello"}, NoCold: true})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sb.Claim, "python-") || len(sb.Claim) != len("python-")+5 {
			t.Errorf("claim name %q, want python- and five characters", sb.Claim)
		}
		if sb.Origin != v1alpha1.OriginWarmPod || sb.Pod == "" {
			t.Errorf("sandbox %+v, want a warm pod", sb)
		}
		res, err := sb.Runner().Execute(ctx, api.ExecuteRequest{Shell: "echo $GREETING"})
		if err != nil || res.Stdout != "hello\n" {
			t.Fatalf("execute: %+v, %v", res, err)
		}
	})

	t.Run("the name of a deleted claim binds to the new claim", func(t *testing.T) {
		_, err := cl.Claim(ctx, claim.Request{Namespace: ns, Pool: "missing", Name: "reused"})
		if !errors.Is(err, claim.ErrFailed) || !strings.Contains(err.Error(), v1alpha1.ReasonPoolNotFound) {
			t.Fatalf("claim of a missing pool: %v, want ErrFailed naming %s", err, v1alpha1.ReasonPoolNotFound)
		}
		waitGone(t, cl, ns, "reused")
		sb, err := cl.Claim(ctx, claim.Request{Namespace: ns, Pool: "python", Name: "reused", NoCold: true})
		if err != nil {
			t.Fatalf("claim reusing the name: %v", err)
		}
		if sb.Claim != "reused" || sb.Origin != v1alpha1.OriginWarmPod {
			t.Errorf("sandbox %+v", sb)
		}
	})

	t.Run("no warm pod free and no cold start: ErrNoSandbox, the claim deleted", func(t *testing.T) {
		if _, err := cl.Claim(ctx, claim.Request{Namespace: ns, Pool: "python", NoCold: true}); err != nil {
			t.Fatalf("the last warm pod: %v", err)
		}
		_, err := cl.Claim(ctx, claim.Request{Namespace: ns, Pool: "python", Name: "too-many", NoCold: true})
		if !errors.Is(err, claim.ErrNoSandbox) {
			t.Fatalf("claim with no warm pod free: %v, want ErrNoSandbox", err)
		}
		waitGone(t, cl, ns, "too-many")
	})

	t.Run("a taken name is refused and its claim kept", func(t *testing.T) {
		held := claim.NewClaim(claim.Request{Namespace: ns, Pool: "missing", Name: "held"}, "held-token-0123456789abcdef")
		if err := e.Client.Create(ctx, held); err != nil {
			t.Fatal(err)
		}
		_, err := cl.Claim(ctx, claim.Request{Namespace: ns, Pool: "python", Name: "held", Timeout: 5 * time.Second})
		if !apierrors.IsAlreadyExists(err) {
			t.Fatalf("claim with a taken name: %v, want AlreadyExists", err)
		}
		got, err := cl.Get(ctx, ns, "held")
		if err != nil || got.UID != held.UID {
			t.Fatalf("the claim holding the name: %v, %v", got, err)
		}
	})
}

// waitGone waits until the claim namespace/name is deleted.
func waitGone(t *testing.T, cl *claim.Client, ns, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := cl.Get(t.Context(), ns, name)
		if apierrors.IsNotFound(errors.Unwrap(err)) || apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("claim %s/%s still there after 30s: %v", ns, name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestGenerateName(t *testing.T) {
	for _, pool := range []string{"py", strings.Repeat("p", 58), strings.Repeat("p", 63), strings.Repeat("p", 200)} {
		name := claim.GenerateName(pool)
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Errorf("GenerateName(%d characters) = %q: %v", len(pool), name, errs)
		}
		if want := min(len(pool)+1, validation.DNS1123LabelMaxLength-5); !strings.HasPrefix(name, (pool + "-")[:want]) {
			t.Errorf("GenerateName(%q) = %q, want the pool's name first", pool, name)
		}
	}
	if a, b := claim.GenerateName("py"), claim.GenerateName("py"); a == b {
		t.Errorf("two names alike: %q", a)
	}
}
