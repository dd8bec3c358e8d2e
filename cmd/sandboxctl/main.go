// Command sandboxctl claims sandboxes from warm pools and drives them:
// claim, exec, cp, release and pools. The work lives in package claim.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := newRootCmd(newRoot(os.Stdin, os.Stdout, os.Stderr)).ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "sandboxctl:", err)
		os.Exit(1)
	}
}

// exitError carries the exit code of a command run by exec, which
// sandboxctl exits with.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("command exited with code %d", e.code) }
