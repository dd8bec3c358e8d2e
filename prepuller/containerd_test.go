package prepuller

import (
	"testing"

	"sandbox.io/injector/internal/testcri"
)

// startContainerd starts a real containerd for the test (internal/testcri).
func startContainerd(t testing.TB, registries ...string) *testcri.Containerd {
	t.Helper()
	return testcri.Start(t, registries...)
}
