// Command hello is an e2e test image's ENTRYPOINT: it prints its arguments
// (the image's CMD, or the pod's args) as one JSON line and sleeps until
// SIGTERM or SIGINT, so a test can see which command line a container got.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Catch the signals before printing: a test that sees the line may
	// signal at once.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	b, err := json.Marshal(map[string][]string{"args": os.Args[1:]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(b))
	<-sigs
}
