package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"

	"sandbox.io/injector/internal/command"
	"sandbox.io/injector/internal/kubeconfig"
	"sandbox.io/injector/internal/logging"
	"sandbox.io/injector/internal/version"
	"sandbox.io/injector/webhook/selftest"
)

// selftestCommand is the subcommand the chart's `helm test` hook runs.
const selftestCommand = "selftest"

// selftestOptions are the command line of `sandbox-webhook selftest`.
type selftestOptions struct {
	kubeconfig string
	namespace  string
	image      string
	timeout    time.Duration
	logLevel   string
}

func (o *selftestOptions) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "Path to a kubeconfig; empty uses KUBECONFIG or the in-cluster configuration.")
	fs.StringVar(&o.namespace, "namespace", "", "Namespace of the dry-run pods: one the webhook injects opted-in pods in (required).")
	fs.StringVar(&o.image, "image", "", "Image of the dry-run pods' container; never pulled (required).")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "How long the dry runs may take in all.")
	fs.StringVar(&o.logLevel, "log-level", "info", "Log level: debug, info, warn or error.")
}

func (o *selftestOptions) Validate() error {
	var errs []error
	if o.namespace == "" {
		errs = append(errs, errors.New("--namespace is required"))
	}
	if o.image == "" {
		errs = append(errs, errors.New("--image is required"))
	}
	if o.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout %s must be positive", o.timeout))
	}
	if _, err := logging.ParseLevel(o.logLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	return errors.Join(errs...)
}

func (o *selftestOptions) LogLevel() slog.Level {
	l, _ := logging.ParseLevel(o.logLevel)
	return l
}

// runSelftest parses the selftest command line and hands it to fn.
func runSelftest(ctx context.Context, args []string, fn func(context.Context, *selftestOptions, *slog.Logger) error) error {
	return command.Run(ctx, "sandbox-webhook "+selftestCommand, args, &selftestOptions{}, fn)
}

// doSelftest dry-runs an opted-in and an opted-out pod through the API
// server (webhook/selftest) and fails unless the first is injected and the
// second is not.
func doSelftest(ctx context.Context, o *selftestOptions, log *slog.Logger) error {
	restCfg, err := kubeconfig.Load(o.kubeconfig, "sandbox-webhook-selftest/"+version.Version)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	res, err := selftest.Run(ctx, kube, selftest.Config{Namespace: o.namespace, Image: o.image})
	if err != nil {
		return fmt.Errorf("selftest: %w", err)
	}
	log.Info("selftest passed", "namespace", o.namespace, "method", res.Status.Method, "runnerVersion", res.Status.RunnerVersion)
	fmt.Fprintf(os.Stdout, "ok: a dry-run pod in namespace %s was injected (method %s, runner %s) and an opted-out one was not\n",
		o.namespace, res.Status.Method, res.Status.RunnerVersion)
	return nil
}
