// Command sandbox-runner is the static entrypoint that sandbox-injector puts
// into wrapped containers. Subcommands:
//
//	sandbox-runner install DEST
//	sandbox-runner run [--mode server|wrap] [--listen ADDR] [--token-file FILE]
//	                   [--workdir DIR] [--grace-period D] [--restart-policy P]
//	                   [--liveness-probe JSON] [--] [CMD [ARGS...]]
//	sandbox-runner version
//
// The work lives in package runner; this file only wires it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"sandbox.io/injector/internal/version"
	"sandbox.io/injector/runner"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		if ee := (*runner.ExitError)(nil); errors.As(err, &ee) {
			os.Exit(ee.Code)
		}
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("sandbox-runner", "err", err)
		os.Exit(1)
	}
}

// runFunc is runner.Run, a parameter so that tests check the flags without
// starting anything.
type runFunc func(context.Context, runner.Config) error

// run dispatches a subcommand. Signals are handled by runner.Run itself: it
// forwards them to the supervised command instead of stopping at once.
func run(ctx context.Context, args []string) error {
	return runWith(ctx, args, os.Stdout, os.Stderr, os.LookupEnv, runner.Run)
}

func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, env lookupEnv, start runFunc) error {
	if len(args) == 0 {
		return errors.New("usage: sandbox-runner install DEST | run [flags] [--] [CMD [ARGS...]] | version")
	}
	switch args[0] {
	case "version", "--version":
		_, err := fmt.Fprintln(stdout, version.Version)
		return err
	case "install":
		if len(args) != 2 {
			return errors.New("usage: sandbox-runner install DEST")
		}
		if err := runner.Install(args[1]); err != nil {
			return fmt.Errorf("installing to %s: %w", args[1], err)
		}
		return nil
	case "run":
		o, err := parseOptions(args[1:], env, stderr)
		if err != nil {
			return err
		}
		return start(ctx, o.config(stderr))
	}
	return fmt.Errorf("unknown subcommand %q: want install, run or version", args[0])
}
