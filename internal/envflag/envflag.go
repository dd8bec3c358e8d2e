// Package envflag lets every flag of a FlagSet be set from an environment
// variable too: --runner-port is SANDBOX_RUNNER_PORT. A flag given on the
// command line wins over the environment.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// Name is the environment variable of a flag: SANDBOX_ followed by the flag
// name in upper case with dashes as underscores.
func Name(flagName string) string {
	return "SANDBOX_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse sets each flag of fs from its environment variable (looked up with
// lookupEnv, os.LookupEnv in production), then parses args over them.
func Parse(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := lookupEnv(Name(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s=%q: %w", Name(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return fs.Parse(args)
}
