// Command chartgen writes the chart's generated files (see package
// sandbox.io/injector/internal/chartgen); make generate-chart-readme
// and make generate-values-schema run it from the repository's root:
//
//	go run ./hack/chartgen [-check] readme|schema...
//
// With -check it writes nothing and fails when a file is stale, naming the
// make target that rewrites it (make verify).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"sandbox.io/injector/internal/chartgen"
	"sandbox.io/injector/internal/docgen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chartgen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("chartgen", flag.ContinueOnError)
	check := fs.Bool("check", false, "Write nothing; fail when a generated file is stale.")
	root := fs.String("root", ".", "The repository's root.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: chartgen [-check] readme|schema [readme|schema]")
	}
	var errs []error
	for _, what := range fs.Args() {
		var err error
		target := "generate-values-schema"
		switch what {
		case "readme":
			target = "generate-chart-readme"
			err = chartgen.GenerateReadmes(*root, !*check)
		case "schema":
			err = chartgen.GenerateSchema(*root, !*check)
		default:
			return fmt.Errorf("unknown generator %q: want readme or schema", what)
		}
		if errors.Is(err, docgen.ErrStale) {
			err = fmt.Errorf("%w; run make %s and commit", err, target)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
