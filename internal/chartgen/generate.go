package chartgen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sandbox.io/injector/internal/docgen"
)

// Files of the repository, relative to its root.
const (
	ChartDir       = "charts/sandbox-injector"
	ValuesFile     = ChartDir + "/values.yaml"
	ReadmeTemplate = ChartDir + "/README.md.tmpl"
	ChartReadme    = ChartDir + "/README.md"
	ValuesSchema   = ChartDir + "/values.schema.json"
	PoolCRD        = ChartDir + "/crds/sandbox.io_sandboxpools.yaml"
	ProjectReadme  = "README.md"
)

// GenerateReadmes renders the chart README and the project README's values
// reference (see the package comment) in the repository at root. With
// write false nothing is written, and a stale file is an error wrapping
// docgen.ErrStale.
func GenerateReadmes(root string, write bool) error {
	values, err := ReadValues(filepath.Join(root, ValuesFile))
	if err != nil {
		return err
	}
	tmpl, err := os.ReadFile(filepath.Join(root, ReadmeTemplate))
	if err != nil {
		return fmt.Errorf("reading the README template: %w", err)
	}
	want, err := Readme(string(tmpl), values)
	if err != nil {
		return err
	}
	readme := filepath.Join(root, ChartReadme)
	current, err := os.ReadFile(readme)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading the chart README: %w", err)
	}
	_, errChart := docgen.Sync(readme, current, want, write)
	_, errProject := docgen.Update(filepath.Join(root, ProjectReadme), ValuesSection, ValuesTable(values), write)
	return errors.Join(errChart, errProject)
}

// GenerateSchema sets the pool items of the values schema from the
// SandboxPool CRD (PoolItems) in the repository at root. With write false
// nothing is written, and a stale schema is an error wrapping
// docgen.ErrStale.
func GenerateSchema(root string, write bool) error {
	crd, err := os.ReadFile(filepath.Join(root, PoolCRD))
	if err != nil {
		return fmt.Errorf("reading the SandboxPool CRD: %w", err)
	}
	items, err := PoolItems(crd)
	if err != nil {
		return fmt.Errorf("%s: %w", PoolCRD, err)
	}
	path := filepath.Join(root, ValuesSchema)
	current, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the values schema: %w", err)
	}
	want, err := SetPoolItems(current, items)
	if err != nil {
		return fmt.Errorf("%s: %w", ValuesSchema, err)
	}
	_, err = docgen.Sync(path, current, want, write)
	return err
}
