package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"

	"sandbox.io/injector/runner"
	"sandbox.io/injector/runner/api"
	"sandbox.io/injector/runner/client"
)

// Example runs a command and moves a file through a runner; here the runner
// is served in process, in a sandbox it is the pod's runner port.
func Example() {
	dir, _ := os.MkdirTemp("", "runner-example-")
	defer os.RemoveAll(dir)
	srv, err := runner.New(runner.Config{Workdir: dir, InsecureLoopback: true}) // no token: loopback clients only, opted in
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()

	ctx := context.Background()
	c := client.New(hs.URL, "", nil)
	if err := c.PutFile(ctx, "greet.sh", strings.NewReader("echo hello from $1\n"), 0o755); err != nil {
		panic(err)
	}
	res, err := c.Execute(ctx, api.ExecuteRequest{Argv: []string{"sh", "greet.sh", "the sandbox"}})
	if err != nil {
		panic(err)
	}
	fmt.Print(res.Stdout)
	fmt.Println("exit code", res.ExitCode)
	// Output:
	// hello from the sandbox
	// exit code 0
}
