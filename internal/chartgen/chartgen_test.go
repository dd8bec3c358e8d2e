package chartgen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestHelmDocsComment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		head, want string
		ok         bool
	}{
		{head: "# -- One line.", want: "One line.", ok: true},
		{head: "# -- First\n# second.", want: "First second.", ok: true},
		{head: "# a section note\n\n# -- The value.", want: "The value.", ok: true},
		{head: "# not helm-docs", ok: false},
		{head: "", ok: false},
		{head: "# --", ok: false},
	}
	for _, tc := range tests {
		got, ok := helmDocsComment(tc.head)
		if got != tc.want || ok != tc.ok {
			t.Errorf("helmDocsComment(%q) = %q, %v; want %q, %v", tc.head, got, ok, tc.want, tc.ok)
		}
	}
}

func TestReadValues(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "values.yaml")
	data := "# -- The name.\nname: x\nsection:\n  # -- A list,\n  # with | a pipe.\n  list: [1, 2]\n  bare: 3\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	values, err := ReadValues(path)
	if err == nil || !strings.Contains(err.Error(), "section.bare has no `# --` comment") {
		t.Errorf("error %v, want one naming section.bare", err)
	}
	want := "| Key | Default | Description |\n|---|---|---|\n" +
		"| `name` | `\"x\"` | The name. |\n" +
		"| `section.list` | `[1,2]` | A list, with \\| a pipe. |\n"
	if got := ValuesTable(values); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	out, err := Readme("# Chart\n{{ range .Values }}{{ .Path }} {{ end }}\n", values)
	if err != nil {
		t.Fatal(err)
	}
	if want := ReadmeHeader + "# Chart\nname section.list \n"; string(out) != want {
		t.Errorf("readme %q, want %q", out, want)
	}
	if _, err := Readme("{{ .Nope }}", values); err == nil {
		t.Error("a template naming a missing field rendered")
	}
}

// TestPoolItems checks the conversion of a CRD's schema into JSON Schema.
func TestPoolItems(t *testing.T) {
	t.Parallel()
	crd := `
spec:
  versions:
  - name: v0
    storage: false
  - name: v1
    storage: true
    schema:
      openAPIV3Schema:
        properties:
          spec:
            required: [template]
            properties:
              template:
                type: object
                x-kubernetes-validations: [{rule: "true"}]
                properties:
                  size:
                    anyOf: [{type: integer}, {type: string}]
                    x-kubernetes-int-or-string: true
                  count: {type: integer, format: int32, minimum: 0}
                  labels: {type: object, additionalProperties: {type: string}}
                  free:
                    type: object
                    x-kubernetes-preserve-unknown-fields: true
                    properties: {a: {type: string}}
                  maybe: {type: string, nullable: true}
                  list:
                    type: array
                    x-kubernetes-list-type: atomic
                    items: {type: object, properties: {n: {type: string}}}
`
	items, err := PoolItems([]byte(crd))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := SetPoolItems([]byte(`{"properties": {"pools": {"type": "array"}}}`), items)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(schema, &got); err != nil {
		t.Fatalf("%v in:\n%s", err, schema)
	}
	tmpl := got["properties"].(map[string]any)["pools"].(map[string]any)["items"].(map[string]any)
	if r := tmpl["required"]; !equalJSON(r, []any{"name", "namespace", "template"}) {
		t.Errorf("required %v", r)
	}
	if tmpl["additionalProperties"] != false {
		t.Error("the pool entry is not closed")
	}
	props := tmpl["properties"].(map[string]any)
	for _, k := range []string{"name", "namespace", "template"} {
		if props[k] == nil {
			t.Errorf("no property %s", k)
		}
	}
	want := `{"type":"object","additionalProperties":false,"properties":{
		"size":{"anyOf":[{"type":"integer"},{"type":"string"}]},
		"count":{"type":"integer","minimum":0},
		"labels":{"type":"object","additionalProperties":{"type":"string"}},
		"free":{"type":"object","properties":{"a":{"type":"string"}}},
		"maybe":{"type":["string","null"]},
		"list":{"type":"array","items":{"type":"object","additionalProperties":false,"properties":{"n":{"type":"string"}}}}}}`
	var wantTemplate any
	if err := json.Unmarshal([]byte(want), &wantTemplate); err != nil {
		t.Fatal(err)
	}
	if !equalJSON(props["template"], wantTemplate) {
		gotJSON, _ := json.Marshal(props["template"])
		t.Errorf("template schema\n%s\nwant\n%s", gotJSON, want)
	}
	// Key order is the source's, with type and additionalProperties first.
	if !strings.Contains(string(schema), `"template": {
            "type": "object",
            "additionalProperties": false,
            "properties": {`) {
		t.Errorf("template schema not in order:\n%s", schema)
	}
}

func TestSetPoolItemsKeepsTheRest(t *testing.T) {
	t.Parallel()
	in := "{\n  \"b\": 1,\n  \"a\": [\n    \"x<y\",\n    0.5,\n    true,\n    null\n  ],\n  \"e\": {},\n  \"f\": [],\n  \"properties\": {\n    \"pools\": {\n      \"items\": {}\n    }\n  }\n}\n"
	out, err := SetPoolItems([]byte(in), &yaml.Node{Kind: yaml.MappingNode})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("got\n%s\nwant\n%s", out, in)
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
