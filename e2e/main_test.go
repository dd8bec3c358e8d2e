package e2e

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv("SANDBOX_E2E") != "1" {
		fmt.Fprintln(os.Stderr, "e2e: SKIPPING every end-to-end test: SANDBOX_E2E is not 1 (run `make e2e`)")
	}
	os.Exit(m.Run())
}
