package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"sandbox.io/injector/internal/testenv"
)

// serveCluster is a real kube-apiserver with the chart's CRDs (the whole
// binary runs, the claim controller with it) and a release namespace, to
// run the binary's serve against.
type serveCluster struct {
	env        *envtest.Environment
	kubeconfig string // a file for --kubeconfig
	c          client.Client
	ns         string // for --release-namespace
}

// startServeCluster starts a serveCluster and gives serve an empty metrics
// registry for the test (freshMetrics).
func startServeCluster(t *testing.T) *serveCluster {
	t.Helper()
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
	return &serveCluster{env: env, kubeconfig: kubeconfig, c: c, ns: ns}
}

// serveInBackground runs the binary (its flags parsed from args, then
// serve) until ctx ends; its error arrives on the channel.
func serveInBackground(ctx context.Context, args []string) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(ctx context.Context, o *options, _ *slog.Logger) error {
			return serve(ctx, o, slog.New(slog.DiscardHandler))
		})
	}()
	return done
}

// freshMetrics gives serve an empty metrics registry for the test: serve
// registers its collectors in controller-runtime's, once per process.
func freshMetrics(t *testing.T) {
	saved := metrics.Registry
	metrics.Registry = prometheus.NewRegistry()
	t.Cleanup(func() { metrics.Registry = saved })
}
