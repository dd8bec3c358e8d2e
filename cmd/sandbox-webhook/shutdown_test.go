package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"sandbox.io/injector/internal/claimkey"
)

// drainDelay is the --shutdown-delay of the tests below.
const drainDelay = 500 * time.Millisecond

// leadingServe is the binary's serve, leading the claim controller, with a
// client holding a connection to its webhook port open.
type leadingServe struct {
	cl     *serveCluster
	done   <-chan error
	signal context.CancelFunc
	health string // address of /readyz
	conn   net.Conn
}

// startLeadingServe runs serve (with --shutdown-delay drainDelay, a drain
// timeout of a minute and extra flags) until it leads the claim controller,
// then opens a connection to its webhook port.
func startLeadingServe(t *testing.T, extra ...string) *leadingServe {
	t.Helper()
	cl := startServeCluster(t)
	webhookAddr := freeAddr(t)
	_, port, _ := net.SplitHostPort(webhookAddr)
	s := &leadingServe{cl: cl, health: freeAddr(t)}
	args := append([]string{
		"--kubeconfig=" + cl.kubeconfig, "--runner-image=runner.test/runner:v1", "--release-namespace=" + cl.ns,
		"--port=" + port, "--cert-dir=" + cl.env.WebhookInstallOptions.LocalServingCertDir,
		"--metrics-bind-address=0", "--health-probe-bind-address=" + s.health,
		"--shutdown-delay=" + drainDelay.String(), "--drain-timeout=1m", "--log-level=error",
		// Controller names are unique per process, and TestServeSelfManagedCertificates runs this one.
		"--pool-network-policies=false",
	}, extra...)
	ctx, signal := context.WithCancel(t.Context())
	s.done, s.signal = serveInBackground(ctx, args), signal
	t.Cleanup(signal)
	waitUntil(t, "the claim controller to lead", func() error {
		select {
		case err := <-s.done:
			t.Fatalf("serve returned before the signal: %v", err)
		default:
		}
		if h, err := s.holder(t); err != nil || h == "" {
			return fmt.Errorf("lease holder %q: %w", h, err)
		}
		return nil
	})
	waitUntil(t, "a connection to the webhook port", func() error {
		var err error
		s.conn, err = net.Dial("tcp", webhookAddr)
		return err
	})
	t.Cleanup(func() { _ = s.conn.Close() })
	return s
}

// holder is the claim Lease's holder; "" when released.
func (s *leadingServe) holder(t *testing.T) (string, error) {
	var lease coordinationv1.Lease
	if err := s.cl.c.Get(t.Context(), client.ObjectKey{Namespace: s.cl.ns, Name: claimLeaseName}, &lease); err != nil {
		return "", err
	}
	return ptr.Deref(lease.Spec.HolderIdentity, ""), nil
}

// waitDraining waits until /readyz fails (the webhook drains) and returns
// when it saw it fail.
func (s *leadingServe) waitDraining(t *testing.T) time.Time {
	t.Helper()
	var at time.Time
	waitUntil(t, "the webhook to drain (/readyz failing)", func() error {
		resp, err := http.Get("http://" + s.health + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return errors.New("/readyz passes")
		}
		at = time.Now()
		return nil
	})
	return at
}

// drainsUntilClosed: serve is still running drainDelay and a second after
// since, with the connection open; once it is closed, serve returns, its
// error is returned.
func (s *leadingServe) drainsUntilClosed(t *testing.T, since time.Time) error {
	t.Helper()
	if wait := drainDelay + time.Second - time.Since(since); wait > 0 {
		time.Sleep(wait)
	}
	select {
	case err := <-s.done:
		t.Fatalf("serve returned %s after it began to stop, with a connection still open: %v", time.Since(since), err)
	default:
	}
	if err := s.conn.Close(); err != nil {
		t.Fatal(err)
	}
	closedAt := time.Now()
	select {
	case err := <-s.done:
		t.Logf("serve returned %s after the last connection closed", time.Since(closedAt).Round(time.Millisecond))
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("serve still running 10 s after the last connection closed")
		return nil
	}
}

// TestSignalHandsOverTheLeaseThenDrains runs the binary's serve against a
// real kube-apiserver and signals it while a client holds a connection to
// the webhook port open: the claim controller's Lease is released at once
// (another replica binds claims from then on), the webhook keeps serving
// for as long as the connection stays open, past --shutdown-delay, and
// serve returns as soon as it closes.
func TestSignalHandsOverTheLeaseThenDrains(t *testing.T) {
	s := startLeadingServe(t)
	s.signal()
	signalledAt := time.Now()
	waitUntil(t, "the lease to be released", func() error {
		if h, err := s.holder(t); err != nil || h != "" {
			return fmt.Errorf("lease holder %q: %w", h, err)
		}
		return nil
	})
	if err := s.drainsUntilClosed(t, signalledAt); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("serve: %v", err)
	}
}

// TestLostLeaseDrainsTheWebhook: another replica takes the claim
// controller's Lease from under this one (as after a partition that
// outlived the lease). The controllers stop and serve returns the error, so
// that the kubelet restarts the container, but only after the webhook
// drained: /readyz fails at once, and it serves on while a connection is
// open.
func TestLostLeaseDrainsTheWebhook(t *testing.T) {
	s := startLeadingServe(t, "--leader-lease-duration=2s")
	ctx := t.Context()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var lease coordinationv1.Lease
		if err := s.cl.c.Get(ctx, client.ObjectKey{Namespace: s.cl.ns, Name: claimLeaseName}, &lease); err != nil {
			return err
		}
		now := metav1.NewMicroTime(time.Now())
		lease.Spec.HolderIdentity = ptr.To("another-replica")
		lease.Spec.AcquireTime, lease.Spec.RenewTime = &now, &now
		lease.Spec.LeaseDurationSeconds = ptr.To[int32](60)
		return s.cl.c.Update(ctx, &lease)
	})
	if err != nil {
		t.Fatalf("taking the lease: %v", err)
	}
	err = s.drainsUntilClosed(t, s.waitDraining(t))
	if err == nil || !strings.Contains(err.Error(), "leader election lost") {
		t.Errorf("serve returned %v, want the lost leader election", err)
	}
	if h, err := s.holder(t); err != nil || h != "another-replica" {
		t.Errorf("lease holder %q (%v), want another-replica's kept", h, err)
	}
}

// TestClaimKeySecretKept: the claim key Secret, deleted while serve runs,
// is created again with the key serve holds (a replica restarting now
// loads it rather than making its own); rotated (another current key, the
// old one previous), serve switches to it without stopping, and its gauge
// sandbox_claim_keys names both keys by ID.
func TestClaimKeySecretKept(t *testing.T) {
	saved := claimKeyInterval
	claimKeyInterval = 100 * time.Millisecond
	t.Cleanup(func() { claimKeyInterval = saved })
	s := startLeadingServe(t)
	ctx := t.Context()
	key := client.ObjectKey{Namespace: s.cl.ns, Name: "sandbox-injector-claim-key"}
	var loaded corev1.Secret
	if err := s.cl.c.Get(ctx, key, &loaded); err != nil {
		t.Fatal(err)
	}
	first := claimkey.Key(loaded.Data[claimkey.SecretKey])
	if got := heldKeys(t); got != "current="+first.ID() {
		t.Fatalf("sandbox_claim_keys says %q, want the loaded key current=%s", got, first.ID())
	}
	if err := s.cl.c.Delete(ctx, &loaded); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the claim key Secret created again", func() error {
		var again corev1.Secret
		if err := s.cl.c.Get(ctx, key, &again); err != nil {
			return err
		}
		if again.UID == loaded.UID {
			return errors.New("not deleted yet")
		}
		if !bytes.Equal(again.Data[claimkey.SecretKey], first) {
			t.Fatal("the claim key Secret came back with another key than serve holds")
		}
		return nil
	})

	var again corev1.Secret
	if err := s.cl.c.Get(ctx, key, &again); err != nil {
		t.Fatal(err)
	}
	rotated := claimkey.Key("a-rotated-key-0123456789abcdef01")
	again.Data = map[string][]byte{claimkey.SecretKey: rotated, claimkey.SecretKeyPrevious: first}
	if err := s.cl.c.Update(ctx, &again); err != nil {
		t.Fatal(err)
	}
	want := "current=" + rotated.ID() + " previous=" + first.ID()
	waitUntil(t, "serve to hold the rotated keys", func() error {
		if got := heldKeys(t); got != want {
			return fmt.Errorf("sandbox_claim_keys says %q, want %q", got, want)
		}
		return nil
	})
	// Still serving and still leading: no drain, no restart.
	time.Sleep(2 * claimKeyInterval)
	select {
	case err := <-s.done:
		t.Fatalf("serve returned after the rotation: %v", err)
	default:
	}
	resp, err := http.Get("http://" + s.health + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz %d after the rotation, want 200", resp.StatusCode)
	}
	if h, err := s.holder(t); err != nil || h == "" {
		t.Fatalf("lease holder %q (%v) after the rotation, want still held", h, err)
	}
}

// heldKeys is what serve's sandbox_claim_keys gauge says: "role=id" pairs,
// current first.
func heldKeys(t *testing.T) string {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, f := range families {
		if f.GetName() != "sandbox_claim_keys" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if m.GetGauge().GetValue() == 1 {
				held = append(held, labels["role"]+"="+labels["id"])
			}
		}
	}
	slices.Sort(held) // "current" sorts before "previous"
	return strings.Join(held, " ")
}
