package chartgen

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"sandbox.io/injector/internal/docgen"
)

// ReadmeHeader opens the generated chart README.
const ReadmeHeader = "<!-- Generated from README.md.tmpl and values.yaml by `make generate-chart-readme`; do not edit. -->\n"

// ValuesSection names the project README's section that ValuesTable fills
// (between `<!-- values:sandbox-injector -->` and `<!-- end -->`).
const ValuesSection = "values:sandbox-injector"

// ReadmeData is what README.md.tmpl sees.
type ReadmeData struct {
	// Values are the documented values, in values.yaml's order.
	Values []Value
}

// Readme renders the chart README template tmpl (text/template) with the
// values, after ReadmeHeader. Besides the data, the template may call
// valuesTable (ValuesTable) and cell (docgen.Cell).
func Readme(tmpl string, values []Value) ([]byte, error) {
	t, err := template.New("README.md.tmpl").Option("missingkey=error").Funcs(template.FuncMap{
		"valuesTable": ValuesTable,
		"cell":        docgen.Cell,
	}).Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("parsing the README template: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(ReadmeHeader)
	if err := t.Execute(&b, ReadmeData{Values: values}); err != nil {
		return nil, fmt.Errorf("rendering the README template: %w", err)
	}
	return b.Bytes(), nil
}

// ValuesTable renders the values as a Markdown table: key, default (as
// JSON) and description.
func ValuesTable(values []Value) string {
	var b strings.Builder
	b.WriteString("| Key | Default | Description |\n|---|---|---|\n")
	for _, v := range values {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", v.Path, v.Default, docgen.Cell(v.Description))
	}
	return b.String()
}
