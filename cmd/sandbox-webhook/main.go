// Command sandbox-webhook serves the mutating admission webhook that injects
// the sandbox runner into opted-in pods.
package main

import (
	"context"
	"log/slog"

	"sandbox.io/injector/internal/command"
)

func main() {
	command.Main("sandbox-webhook", func(ctx context.Context, args []string) error { return run(ctx, args, serve) })
}

// run parses args into options and hands them to serveFn (see command.Run).
func run(ctx context.Context, args []string, serveFn func(context.Context, *options, *slog.Logger) error) error {
	return command.Run(ctx, "sandbox-webhook", args, &options{}, serveFn)
}
