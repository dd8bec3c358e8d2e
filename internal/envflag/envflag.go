// Package envflag lets every flag of a FlagSet be set from an environment
// variable too: --runner-port is SANDBOX_RUNNER_PORT. A flag given on the
// command line wins over the environment. A flag may also read variables
// that others name (Also), such as POD_NAMESPACE from the downward API. It
// depends on the standard library alone, so the runner uses it too.
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
// lookupEnv, os.LookupEnv in production), then parses args over them. A
// variable that is set, even to the empty string, is applied; a value the
// flag refuses is an error naming the variable.
func Parse(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		for _, name := range EnvNames(f) {
			v, ok := lookupEnv(name)
			if !ok {
				continue
			}
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s=%q: %w", name, v, err))
			}
			return
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return fs.Parse(args)
}

// Also makes Parse read the flag flagName of fs from the variables names,
// the first one set, when the flag's own SANDBOX_* variable is unset: for
// variables that others name, like POD_NAMESPACE, which a chart sets from
// the downward API. It panics when fs has no flag flagName, a programming
// error like the flag package's redefinition panic.
func Also(fs *flag.FlagSet, flagName string, names ...string) {
	f := fs.Lookup(flagName)
	if f == nil {
		panic(fmt.Sprintf("envflag.Also: no flag %q", flagName))
	}
	f.Value = &also{Value: f.Value, names: names}
}

// EnvNames lists the variables Parse reads for f, in the order it tries
// them: its SANDBOX_* variable, then those given to Also.
func EnvNames(f *flag.Flag) []string {
	names := []string{Name(f.Name)}
	if a, ok := f.Value.(*also); ok {
		names = append(names, a.names...)
	}
	return names
}

// also is a flag's value with the further variables Parse reads for it.
type also struct {
	flag.Value
	names []string
}

// String is the wrapped value's; the flag package calls it on a zero also
// too (PrintDefaults), hence the nil check.
func (a *also) String() string {
	if a == nil || a.Value == nil {
		return ""
	}
	return a.Value.String()
}

// IsBoolFlag keeps --flag without =value working for a wrapped bool flag.
func (a *also) IsBoolFlag() bool {
	b, ok := a.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
