package main

import (
	"flag"
	"testing"

	"sandbox.io/injector/internal/docgen"
	"sandbox.io/injector/internal/envflag"
)

// TestReadmeFlags keeps the README's flag reference of sandbox-agent
// (between `<!-- flags:sandbox-agent -->` and `<!-- end -->`) equal to the
// flag set the binary parses: every flag, its environment variable, its
// default and its usage. `make generate-flags` (REFRESH_README=true)
// rewrites it; `make verify` runs this test. POD_NAMESPACE is cleared: it
// is a default of --namespace, and the reference must not depend on the
// environment it is made in.
func TestReadmeFlags(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	fs := flag.NewFlagSet("sandbox-agent", flag.ContinueOnError)
	(&options{}).AddFlags(fs)
	if _, err := docgen.Update("../../README.md", "flags:sandbox-agent", docgen.FlagTable(fs, envflag.Name), docgen.RefreshRequested()); err != nil {
		t.Errorf("%v; run make generate-flags", err)
	}
}
