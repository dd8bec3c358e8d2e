// Command sandboxctl claims sandboxes from warm pools and drives them:
// claim, exec, cp, extend, release, list, pools and token. The work lives in
// package claim. Installed (or linked) as kubectl-sandbox it is the kubectl
// plugin "kubectl sandbox", and as kubectl_complete-sandbox it answers
// kubectl's shell completion of the plugin.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"sandbox.io/injector/claim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	setupLogging(os.Stderr)
	r := newRoot(os.Stdin, os.Stdout, os.Stderr)
	name, args := invokedAs(os.Args[0], os.Args[1:])
	r.name = name
	cmd := newRootCmd(r)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee exitError
		if !errors.As(err, &ee) {
			fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), err)
		}
		os.Exit(exitCode(err))
	}
}

// invokedAs returns the name to show in help and the arguments to run:
// kubectl-sandbox is "kubectl sandbox", and kubectl_complete-sandbox (what
// kubectl runs to complete a plugin's arguments) completes them.
func invokedAs(argv0 string, args []string) (string, []string) {
	switch filepath.Base(argv0) {
	case "kubectl-sandbox":
		return "kubectl sandbox", args
	case "kubectl_complete-sandbox":
		return "kubectl sandbox", append([]string{"__complete"}, args...)
	}
	return "sandboxctl", args
}

// exitCode maps an error to sandboxctl's exit code (see exitCodesHelp).
func exitCode(err error) int {
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, claim.ErrNoSandbox):
		return exitNoSandbox
	case errors.Is(err, claim.ErrExpired):
		return exitExpired
	}
	return exitFailure
}

// exitError carries the exit code of a command run by exec, which
// sandboxctl exits with.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("command exited with code %d", e.code) }
