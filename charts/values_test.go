package charts

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// documentedValue is one value of values.yaml with its `# --` comment.
type documentedValue struct {
	path        string // dotted, e.g. webhook.image.tag
	defaultJSON string // the default, compact JSON
	description string
}

// readValues parses values.yaml and returns every documented value in file
// order. A key is a documented value when it has a `# --` comment (helm-docs
// style); a key without one must be a mapping whose keys are documented in
// turn. Anything else is an error: every value must say what it does.
func readValues(t *testing.T) []documentedValue {
	t.Helper()
	dir, err := ChartDir()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parsing values.yaml: %v", err)
	}
	var out []documentedValue
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			path := prefix + key.Value
			desc, documented := helmDocsComment(key.HeadComment)
			switch {
			case documented:
				var v any
				if err := val.Decode(&v); err != nil {
					t.Fatalf("decoding %s: %v", path, err)
				}
				def, err := json.Marshal(v)
				if err != nil {
					t.Fatalf("encoding %s: %v", path, err)
				}
				out = append(out, documentedValue{path: path, defaultJSON: string(def), description: desc})
			case val.Kind == yaml.MappingNode && len(val.Content) > 0:
				walk(val, path+".")
			default:
				t.Errorf("values.yaml: %s has no `# --` comment", path)
			}
		}
	}
	walk(doc.Content[0], "")
	return out
}

// helmDocsComment returns the text of a `# --` comment block (the last
// block before the key), joined into one paragraph.
func helmDocsComment(head string) (string, bool) {
	lines := strings.Split(head, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "# --") {
			start = i
		}
	}
	if start < 0 {
		return "", false
	}
	var words []string
	for i, l := range lines[start:] {
		l = strings.TrimSpace(l)
		if i == 0 {
			l = strings.TrimPrefix(l, "# --")
		} else {
			l = strings.TrimPrefix(l, "#")
		}
		if l = strings.TrimSpace(l); l != "" {
			words = append(words, l)
		}
	}
	return strings.Join(words, " "), len(words) > 0
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
		documented[v.path] = true
		for p := v.path; strings.Contains(p, "."); {
			p = p[:strings.LastIndex(p, ".")]
			sections[p] = true
		}
		if !strings.HasSuffix(v.description, ".") || v.description[0] < 'A' || v.description[0] > 'Z' {
			t.Errorf("%s: comment %q is not a full sentence", v.path, v.description)
		}
		if schemaAt(schema, v.path) == nil {
			t.Errorf("%s is in values.yaml but not in values.schema.json", v.path)
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

// The project README's Helm values reference lies between these markers.
const (
	readmeBegin = "<!-- chart: owned by the chart work"
	readmeEnd   = "<!-- chart: end -->"
)

// valuesReference renders the README section from values.yaml.
func valuesReference(values []documentedValue) string {
	var b strings.Builder
	b.WriteString(readmeBegin + "; generated from charts/sandbox-injector/values.yaml, checked by `go test ./charts` (REFRESH_README=true rewrites it) -->\n")
	b.WriteString("Every value of `charts/sandbox-injector` with its default. `values.schema.json` rejects unknown keys and wrong types, so a misspelled value fails `helm install`.\n\n")
	b.WriteString("| Key | Default | Description |\n|---|---|---|\n")
	for _, v := range values {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", v.path, v.defaultJSON, strings.ReplaceAll(v.description, "|", `\|`))
	}
	b.WriteString(readmeEnd)
	return b.String()
}

// TestReadmeValuesReference keeps the README's values reference equal to
// values.yaml.
func TestReadmeValuesReference(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(root, "README.md")
	data, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	begin := strings.Index(text, readmeBegin)
	end := strings.Index(text, readmeEnd)
	if begin < 0 || end < begin {
		t.Fatalf("README.md has no section between %q and %q", readmeBegin, readmeEnd)
	}
	end += len(readmeEnd)
	want := valuesReference(readValues(t))
	if text[begin:end] == want {
		return
	}
	if os.Getenv("REFRESH_README") == "true" {
		// Rewrite only this section, leaving the rest of the file as it is.
		if err := os.WriteFile(readme, []byte(text[:begin]+want+text[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the values reference in %s", readme)
		return
	}
	t.Errorf("README.md values reference is stale; run REFRESH_README=true go test ./charts -run TestReadmeValuesReference, or paste:\n%s", want)
}

// chartReadme renders the chart's own README.md (what `helm show readme`
// prints) from values.yaml.
func chartReadme(values []documentedValue) string {
	var b strings.Builder
	b.WriteString("<!-- Generated from values.yaml by the chart's tests (REFRESH_README=true go test ./charts); do not edit. -->\n")
	b.WriteString("# sandbox-injector\n\n")
	b.WriteString("Turns any container image into a remotely driven sandbox on Kubernetes: a mutating admission webhook injects a static runner ")
	b.WriteString("(copied by an init container) that becomes the entrypoint of opted-in pods, supervises the original command and serves an authenticated HTTP API.\n\n")
	b.WriteString("It installs the webhook (Deployment, Service, PodDisruptionBudget, RBAC), its MutatingWebhookConfiguration, a ValidatingAdmissionPolicy guard ")
	b.WriteString("that refuses opted-in pods the webhook did not inject, the node agent (a DaemonSet that pre-pulls images and keeps warm pools; `agent.enabled`), ")
	b.WriteString("roles for the users of sandboxes, and the webhook's serving certificate: from cert-manager when the cluster serves its API (`certManager.enabled: auto`), ")
	b.WriteString("else made and rotated by the webhook itself. The NOTES say which.\n\n")
	b.WriteString("Opt a namespace in with the label `sandbox.io/inject=enabled`, or a single pod with the annotation `sandbox.io/inject: \"true\"`. ")
	b.WriteString("Kubernetes 1.30 or later is required.\n\n")
	b.WriteString("## Installing\n\n")
	b.WriteString("```sh\nhelm install sandbox-injector ./sandbox-injector -n sandbox-system --create-namespace\nhelm test sandbox-injector -n sandbox-system\n```\n\n")
	b.WriteString("The node agent mounts each node's CRI socket and runs as root, so the release namespace needs the Pod Security level `privileged`; ")
	b.WriteString("the install fails early, naming the label to set, where its `pod-security.kubernetes.io/enforce` label says less. ")
	b.WriteString("`helm test` asks the API server for a server-side dry-run create of an opted-in and an opted-out pod in `tests.namespace` ")
	b.WriteString("(the release namespace is never injected) and checks that only the first comes back injected.\n\n")
	b.WriteString("## Upgrading\n\n")
	b.WriteString("Helm installs the CRDs in `crds/` on the first install and never upgrades them. Apply them before each upgrade:\n\n")
	b.WriteString("```sh\nkubectl apply --server-side -f charts/sandbox-injector/crds\nhelm upgrade sandbox-injector charts/sandbox-injector -n sandbox-system\n```\n\n")
	b.WriteString("## Values\n\n")
	b.WriteString("| Key | Default | Description |\n|---|---|---|\n")
	for _, v := range values {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", v.path, v.defaultJSON, strings.ReplaceAll(v.description, "|", `\|`))
	}
	return b.String()
}

// TestChartReadme keeps charts/sandbox-injector/README.md equal to
// values.yaml.
func TestChartReadme(t *testing.T) {
	t.Parallel()
	dir, err := ChartDir()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "README.md")
	want := chartReadme(readValues(t))
	got, err := os.ReadFile(path)
	if err == nil && string(got) == want {
		return
	}
	if os.Getenv("REFRESH_README") == "true" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", path)
		return
	}
	t.Errorf("%s is stale or missing (%v); run REFRESH_README=true go test ./charts -run TestChartReadme", path, err)
}

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
