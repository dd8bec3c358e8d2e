package integration_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/certs"
)

// barrierReader is the real API client, except that the first Get of a
// Secret by each of n callers waits until all n have read it: every replica
// then decides on the same view, which forces the write race that timing
// alone only makes likely.
type barrierReader struct {
	client.Reader
	wg   *sync.WaitGroup
	once sync.Once
}

func (b *barrierReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	err := b.Reader.Get(ctx, key, obj, opts...)
	if _, ok := obj.(*corev1.Secret); ok {
		b.once.Do(func() {
			b.wg.Done()
			b.wg.Wait()
		})
	}
	return err
}

// forcedRace runs one pass of two rotators that read the same Secret state
// before either writes, and returns their errors.
func (e *env) forcedRace(t *testing.T, cc certs.Config) (a, b *certs.Rotator, errs [2]error) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(2)
	var rots [2]*certs.Rotator
	for i := range rots {
		r, err := certs.New(cc, certs.Options{Reader: &barrierReader{Reader: e.c, wg: &wg}, Writer: e.c})
		if err != nil {
			t.Fatal(err)
		}
		rots[i] = r
	}
	var done sync.WaitGroup
	for i, r := range rots {
		done.Go(func() { errs[i] = r.Sync(t.Context()) })
	}
	done.Wait()
	return rots[0], rots[1], errs
}

func (e *env) testForcedRaces(t *testing.T) {
	t.Parallel()
	ns := e.namespace(t, "forced")
	if err := e.c.Create(t.Context(), webhookConfig(ns, ns, "https://127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	cc := certs.Config{Namespace: ns, SecretName: "serving-cert", WebhookConfigName: ns, ServiceName: "sandbox-injector"}

	check := func(what string, a, b *certs.Rotator, errs [2]error) {
		t.Helper()
		lost := 0
		for _, err := range errs {
			switch {
			case errors.Is(err, certs.ErrLostRace):
				lost++
			case err != nil:
				t.Fatalf("%s: %v", what, err)
			}
		}
		if lost != 1 {
			t.Fatalf("%s: %d replicas lost the race, want exactly 1 (errors %v)", what, lost, errs)
		}
		// The loser's next pass adopts the winner's certificates.
		for _, r := range []*certs.Rotator{a, b} {
			if err := r.Sync(t.Context()); err != nil {
				t.Fatalf("%s: pass after the race: %v", what, err)
			}
		}
		st, _, err := e.secretState(t, ns, "serving-cert")
		if err != nil {
			t.Fatal(err)
		}
		if !served(a).Equal(st.Serving.Cert) || !served(b).Equal(st.Serving.Cert) {
			t.Errorf("%s: the replicas do not both serve the Secret's certificate", what)
		}
		for i, bundle := range e.bundles(t, ns) {
			if !certs.Verifies(bundle, st.Serving.Cert, time.Now()) {
				t.Errorf("%s: webhook %d does not trust the serving certificate", what, i)
			}
		}
		if err := errors.Join(a.ReadyChecker()(nil), b.ReadyChecker()(nil)); err != nil {
			t.Errorf("%s: not ready: %v", what, err)
		}
	}

	// Both see no Secret and create one: one Create fails with AlreadyExists.
	a, b, errs := e.forcedRace(t, cc)
	check("create race", a, b, errs)
	first, _, err := e.secretState(t, ns, "serving-cert")
	if err != nil {
		t.Fatal(err)
	}

	// Both see the same corrupt Secret and replace it: one Update fails
	// with a conflict on resourceVersion.
	var sec corev1.Secret
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "serving-cert"}, &sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["ca.key"] = []byte("garbage")
	if err := e.c.Update(t.Context(), &sec); err != nil {
		t.Fatal(err)
	}
	a, b, errs = e.forcedRace(t, cc)
	check("replace race", a, b, errs)
	second, _, err := e.secretState(t, ns, "serving-cert")
	if err != nil {
		t.Fatal(err)
	}
	if second.Signer.Cert.Equal(first.Signer.Cert) {
		t.Error("the corrupt CA was not replaced")
	}
	if len(second.Bundle) != 2 || !second.Bundle[1].Equal(first.Signer.Cert) {
		t.Errorf("the replaced Secret's bundle has %d CAs; want the new one and the old one, which still parses", len(second.Bundle))
	}
}
