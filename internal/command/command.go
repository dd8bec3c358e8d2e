// Package command is the shared start of the project's long-running
// binaries (sandbox-webhook, sandbox-agent): flags, also settable through
// SANDBOX_* environment variables, checked before anything starts; one
// structured logger; and a serve function that runs until SIGINT or SIGTERM.
package command

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

// Options are a binary's settings.
type Options interface {
	// AddFlags registers every setting on fs.
	AddFlags(fs *flag.FlagSet)
	// Validate reports every invalid setting, joined.
	Validate() error
	// LogLevel is the level the logger starts at.
	LogLevel() slog.Level
}

// Run parses args and the environment into o, validates them, and hands o
// and a logger at o's level to serve. A serve that ends with ctx's
// cancellation is a clean stop. Tests pass a fake serve to check flag
// handling without a cluster.
func Run[O Options](ctx context.Context, name string, args []string, o O, serve func(context.Context, O, *slog.Logger) error) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	o.AddFlags(fs)
	if err := envflag.Parse(fs, args, os.LookupEnv); err != nil {
		return fmt.Errorf("parsing flags: %w", err)
	}
	if err := o.Validate(); err != nil {
		return fmt.Errorf("invalid flags: %w", err)
	}
	log := slog.New(logging.NewHandler(os.Stderr, o.LogLevel()))
	if err := serve(ctx, o, log); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Main calls run with the process's arguments and a context that ends on
// SIGINT or SIGTERM, and exits with status 1 when it fails.
func Main(name string, run func(ctx context.Context, args []string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		slog.Error(name+" stopped", "err", err)
		os.Exit(1)
	}
}
