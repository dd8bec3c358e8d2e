package charts

import (
	"strings"
	"testing"
)

// TestSchemaPools checks the pool items of values.schema.json, which
// `make generate-values-schema` makes from the SandboxPool CRD: a pool the
// API server would accept renders, and a field the API server would prune
// or refuse, however deep in the spec, fails the install naming it.
func TestSchemaPools(t *testing.T) {
	t.Parallel()
	helm := requireHelm(t)
	pool := func(template map[string]any) map[string]any {
		return map[string]any{"pools": []any{map[string]any{"name": "py", "namespace": "team-a", "template": template}}}
	}
	valid := pool(map[string]any{
		"image":           "python:3.13",
		"resources":       map[string]any{"limits": map[string]any{"cpu": "1", "memory": 1073741824}},
		"securityContext": map[string]any{"runAsNonRoot": true, "capabilities": map[string]any{"drop": []any{"ALL"}}},
		"env":             []any{map[string]any{"name": "A", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "s", "key": "k"}}}},
		"workDir":         map[string]any{"sizeLimit": "1Gi"},
	})
	if _, err := Render(t.Context(), helm, valid); err != nil {
		t.Fatalf("a valid pool did not render: %v", err)
	}
	tests := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{name: "misspelled resources key", values: pool(map[string]any{"image": "x", "resources": map[string]any{"limts": map[string]any{}}}), want: "'limts' not allowed"},
		{name: "misspelled security context key", values: pool(map[string]any{"image": "x", "securityContext": map[string]any{"runAsNonRot": true}}), want: "'runAsNonRot' not allowed"},
		{name: "malformed quantity", values: pool(map[string]any{"image": "x", "workDir": map[string]any{"sizeLimit": "lots"}}), want: "/pools/0/template/workDir/sizeLimit"},
		{name: "no image", values: pool(map[string]any{"command": []any{"sh"}}), want: "image"},
		{name: "too many pods per node", values: map[string]any{"pools": []any{map[string]any{"name": "py", "namespace": "a", "podsPerNode": 101, "template": map[string]any{"image": "x"}}}}, want: "/pools/0/podsPerNode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Render(t.Context(), helm, tc.values)
			if err == nil {
				t.Fatalf("rendered; want the schema to reject %v", tc.values)
			}
			if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention the schema and %q", err, tc.want)
			}
		})
	}
}
