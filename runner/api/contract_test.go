package api_test

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"sandbox.io/injector/runner/api"
)

func TestDefaultListenIsDefaultPort(t *testing.T) {
	t.Parallel()
	if want := ":" + strconv.Itoa(api.DefaultPort); api.DefaultListen != want {
		t.Errorf("DefaultListen = %q, want %q (DefaultPort on every interface)", api.DefaultListen, want)
	}
}

// TestStandardLibraryOnly fails when this package gains a dependency outside
// the standard library: the runner links it, and so does every component that
// talks to the runner.
func TestStandardLibraryOnly(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "sandbox.io/injector/runner/api" {
			t.Errorf("runner/api imports %s, which is not the standard library", dep)
		}
	}
}
