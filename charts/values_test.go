package charts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sandbox.io/injector/internal/chartgen"
)

// readValues returns every documented value of values.yaml (see
// chartgen.ReadValues: a value without a `# --` comment is an error).
func readValues(t *testing.T) []chartgen.Value {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	values, err := chartgen.ReadValues(filepath.Join(root, chartgen.ValuesFile))
	if err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	return values
}

func readSchema(t *testing.T) map[string]any {
	t.Helper()
	dir, err := ChartDir()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("parsing values.schema.json: %v", err)
	}
	return schema
}

// TestValuesDocumented checks that every value has a full-sentence comment,
// that values.yaml and values.schema.json describe the same keys, and that
// the schema closes every object it describes (additionalProperties: false),
// so that a misspelled value fails instead of being ignored.
func TestValuesDocumented(t *testing.T) {
	t.Parallel()
	values := readValues(t)
	schema := readSchema(t)
	documented := map[string]bool{}
	sections := map[string]bool{"": true}
	for _, v := range values {
		documented[v.Path] = true
		for p := v.Path; strings.Contains(p, "."); {
			p = p[:strings.LastIndex(p, ".")]
			sections[p] = true
		}
		if !strings.HasSuffix(v.Description, ".") || v.Description[0] < 'A' || v.Description[0] > 'Z' {
			t.Errorf("%s: comment %q is not a full sentence", v.Path, v.Description)
		}
		if schemaAt(schema, v.Path) == nil {
			t.Errorf("%s is in values.yaml but not in values.schema.json", v.Path)
		}
	}
	var walk func(s map[string]any, path string)
	walk = func(s map[string]any, path string) {
		props, _ := s["properties"].(map[string]any)
		if props == nil {
			return
		}
		if s["additionalProperties"] != false {
			t.Errorf("schema of %q does not set additionalProperties: false", path)
		}
		for name, sub := range props {
			p := strings.TrimPrefix(path+"."+name, ".")
			switch {
			case p == "global": // Helm's own
			case documented[p] || sections[p]:
				// A documented object value may be closed too.
				walk(sub.(map[string]any), p)
			case sections[path]:
				t.Errorf("%s is in values.schema.json but not in values.yaml", p)
			default:
				// Inside a documented object value: keys its default leaves
				// out (such as affinity.nodeAffinity) are allowed.
			}
		}
	}
	walk(schema, "")
}

// schemaAt returns the schema of a dotted values path, or nil.
func schemaAt(schema map[string]any, path string) map[string]any {
	s := schema
	for _, name := range strings.Split(path, ".") {
		props, _ := s["properties"].(map[string]any)
		next, _ := props[name].(map[string]any)
		if next == nil {
			return nil
		}
		s = next
	}
	return s
}

// TestGeneratedChartFiles checks that the files `make generate-chart-readme`
// and `make generate-values-schema` write (internal/chartgen) are up to
// date: the chart README from README.md.tmpl and values.yaml, the project
// README's values reference, and the pool items of values.schema.json from
// the SandboxPool CRD. make verify checks the same; this keeps `go test
// ./charts` failing on drift as well.
func TestGeneratedChartFiles(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := chartgen.GenerateReadmes(root, false); err != nil {
		t.Errorf("%v; run make generate-chart-readme", err)
	}
	if err := chartgen.GenerateSchema(root, false); err != nil {
		t.Errorf("%v; run make generate-values-schema", err)
	}
}
