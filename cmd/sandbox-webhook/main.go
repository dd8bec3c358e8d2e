// Command sandbox-webhook serves the mutating admission webhook that injects
// the sandbox runner into opted-in pods.
package main

import (
	"context"
	"log/slog"

	"sandbox.io/injector/internal/command"
)

func main() {
	command.Main("sandbox-webhook", func(ctx context.Context, args []string) error {
		// `sandbox-webhook selftest ...` checks a live installation (helm test).
		if len(args) > 0 && args[0] == selftestCommand {
			return runSelftest(ctx, args[1:], doSelftest)
		}
		return run(ctx, args, serve)
	})
}

// run parses args into options and hands them to serveFn (see command.Run).
func run(ctx context.Context, args []string, serveFn func(context.Context, *options, *slog.Logger) error) error {
	return command.Run(ctx, "sandbox-webhook", args, &options{}, serveFn)
}
