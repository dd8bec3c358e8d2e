package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"sandbox.io/injector/internal/testenv"
)

// TestSignalHandsOverTheLeaseThenDrains runs the binary's serve against a
// real kube-apiserver and signals it while a client holds a connection to
// the webhook port open: the claim controller's Lease is released at once
// (another replica binds claims from then on), the webhook keeps serving
// for as long as the connection stays open, past --shutdown-delay, and
// serve returns as soon as it closes.
func TestSignalHandsOverTheLeaseThenDrains(t *testing.T) {
	freshMetrics(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join(root, "charts", "sandbox-injector", "crds")}, ErrorIfCRDPathMissing: true}
	cfg := testenv.Start(t, env)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := "sandbox-system"
	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	const delay = 500 * time.Millisecond
	webhookAddr := freeAddr(t)
	_, port, _ := net.SplitHostPort(webhookAddr)
	args := []string{
		"--kubeconfig=" + kubeconfig, "--runner-image=runner.test/runner:v1", "--release-namespace=" + ns,
		"--port=" + port, "--cert-dir=" + env.WebhookInstallOptions.LocalServingCertDir,
		"--metrics-bind-address=0", "--health-probe-bind-address=" + freeAddr(t),
		"--shutdown-delay=" + delay.String(), "--drain-timeout=1m", "--log-level=error",
		// Controller names are unique per process, and TestServeSelfManagedCertificates runs this one.
		"--pool-network-policies=false",
	}
	signalled, signal := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(signalled, args, func(ctx context.Context, o *options, _ *slog.Logger) error {
			return serve(ctx, o, slog.New(slog.DiscardHandler))
		})
	}()
	t.Cleanup(signal)

	holder := func() (string, error) {
		var lease coordinationv1.Lease
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: claimLeaseName}, &lease); err != nil {
			return "", err
		}
		if lease.Spec.HolderIdentity == nil {
			return "", nil
		}
		return *lease.Spec.HolderIdentity, nil
	}
	waitUntil(t, "the claim controller to lead", func() error {
		select {
		case err := <-done:
			t.Fatalf("serve returned before the signal: %v", err)
		default:
		}
		if h, err := holder(); err != nil || h == "" {
			return fmt.Errorf("lease holder %q: %w", h, err)
		}
		return nil
	})
	var conn net.Conn
	waitUntil(t, "a connection to the webhook port", func() error {
		conn, err = net.Dial("tcp", webhookAddr)
		return err
	})
	defer conn.Close()

	signal()
	signalledAt := time.Now()
	waitUntil(t, "the lease to be released", func() error {
		if h, err := holder(); err != nil || h != "" {
			return fmt.Errorf("lease holder %q: %w", h, err)
		}
		return nil
	})
	if wait := delay + time.Second - time.Since(signalledAt); wait > 0 {
		time.Sleep(wait)
	}
	select {
	case err := <-done:
		t.Fatalf("serve returned %s after the signal, with a connection still open: %v", time.Since(signalledAt), err)
	default:
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	closedAt := time.Now()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
		t.Logf("serve returned %s after the last connection closed", time.Since(closedAt).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("serve still running 10 s after the last connection closed")
	}
}

// freshMetrics gives serve an empty metrics registry for the test: serve
// registers its collectors in controller-runtime's, once per process.
func freshMetrics(t *testing.T) {
	saved := metrics.Registry
	metrics.Registry = prometheus.NewRegistry()
	t.Cleanup(func() { metrics.Registry = saved })
}
