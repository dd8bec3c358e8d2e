package main

import (
	"flag"
	"testing"

	"sandbox.io/injector/internal/docgen"
	"sandbox.io/injector/internal/envflag"
)

// TestReadmeFlags keeps the README's flag reference of sandbox-webhook
// (between `<!-- flags:sandbox-webhook -->` and `<!-- end -->`) equal to
// the flag set the binary parses: every flag, its environment variable, its
// default and its usage. `make generate-flags` (REFRESH_README=true)
// rewrites it; `make verify` runs this test.
func TestReadmeFlags(t *testing.T) {
	fs := flag.NewFlagSet("sandbox-webhook", flag.ContinueOnError)
	(&options{}).AddFlags(fs)
	if _, err := docgen.Update("../../README.md", "flags:sandbox-webhook", docgen.FlagTable(fs, envflag.Name), docgen.RefreshRequested()); err != nil {
		t.Errorf("%v; run make generate-flags", err)
	}
}
