// Command sandbox-agent is the node agent, one per node (a DaemonSet): it
// keeps the node's sandbox.io/image-volume label current from the container
// runtime's CRI version, pre-pulls images through the CRI and keeps the
// node's warm pods of every SandboxPool (package agent).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"sandbox.io/injector/internal/envflag"
	"sandbox.io/injector/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], serve); err != nil {
		slog.Error("sandbox-agent stopped", "err", err)
		os.Exit(1)
	}
}

// run parses args into options and hands them to serveFn; tests pass a
// fake serveFn to check flag handling without a cluster.
func run(ctx context.Context, args []string, serveFn func(context.Context, *options, *slog.Logger) error) error {
	var o options
	fs := flag.NewFlagSet("sandbox-agent", flag.ContinueOnError)
	o.addFlags(fs)
	if err := envflag.Parse(fs, args, os.LookupEnv); err != nil {
		return fmt.Errorf("parsing flags: %w", err)
	}
	if err := o.validate(); err != nil {
		return fmt.Errorf("invalid flags: %w", err)
	}
	log := slog.New(logging.NewHandler(os.Stderr, o.level()))
	if err := serveFn(ctx, &o, log); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
