// Command sandbox-agent is the node agent, one per node (a DaemonSet): it
// keeps the node's sandbox.io/image-volume label current from the container
// runtime's CRI version, pre-pulls images through the CRI and keeps the
// node's warm pods of every SandboxPool (package agent).
package main

import (
	"context"
	"log/slog"

	"sandbox.io/injector/internal/command"
)

func main() {
	command.Main("sandbox-agent", func(ctx context.Context, args []string) error { return run(ctx, args, serve) })
}

// run parses args into options and hands them to serveFn (see command.Run).
func run(ctx context.Context, args []string, serveFn func(context.Context, *options, *slog.Logger) error) error {
	return command.Run(ctx, "sandbox-agent", args, &options{}, serveFn)
}
