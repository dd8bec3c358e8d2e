package main

import (
	"flag"
	"regexp"
	"testing"

	"sandbox.io/injector/internal/docgen"
)

// envSuffix is how a runner flag's usage names its environment variable.
var envSuffix = regexp.MustCompile(` \(env (SANDBOX_[A-Z_]+)\)$`)

// TestReadmeFlags keeps the README's flag reference of `sandbox-runner run`
// (between `<!-- flags:sandbox-runner -->` and `<!-- end -->`) equal to the
// flag set the binary parses: every flag, its environment variable (which
// each usage must name, as "(env SANDBOX_...)"), its default and its usage.
// `make generate-flags` (REFRESH_README=true) rewrites it; `make verify`
// runs this test. The defaults are the code's own: the environment is read
// only when the flags are parsed, so the reference never depends on it.
func TestReadmeFlags(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("sandbox-runner run", flag.ContinueOnError)
	(&options{}).addFlags(fs)
	env := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		m := envSuffix.FindStringSubmatch(f.Usage)
		if m == nil {
			t.Errorf("the usage of --%s does not end naming its environment variable, (env SANDBOX_...): %q", f.Name, f.Usage)
			return
		}
		env[f.Name] = m[1]
		f.Usage = f.Usage[:len(f.Usage)-len(m[0])]
	})
	table := docgen.FlagTable(fs, func(name string) string { return env[name] })
	if _, err := docgen.Update("../../README.md", "flags:sandbox-runner", table, docgen.RefreshRequested()); err != nil {
		t.Errorf("%v; run make generate-flags", err)
	}
}
