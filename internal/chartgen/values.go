package chartgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Value is one documented value of values.yaml.
type Value struct {
	// Path is the dotted key, e.g. webhook.image.tag.
	Path string
	// Default is the default as compact JSON.
	Default string
	// Description is the key's `# --` comment as one paragraph.
	Description string
}

// ReadValues parses the values file at path and returns every documented
// value in file order. A key is a documented value when it has a `# --`
// comment (helm-docs style); a key without one must be a mapping whose
// keys are documented in turn. Anything else is an error naming the key:
// every value must say what it does.
func ReadValues(path string) ([]Value, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading values: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	var out []Value
	var errs []error
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			p := prefix + key.Value
			desc, documented := helmDocsComment(key.HeadComment)
			switch {
			case documented:
				var v any
				if err := val.Decode(&v); err != nil {
					errs = append(errs, fmt.Errorf("decoding %s: %w", p, err))
					continue
				}
				def, err := json.Marshal(v)
				if err != nil {
					errs = append(errs, fmt.Errorf("encoding %s: %w", p, err))
					continue
				}
				out = append(out, Value{Path: p, Default: string(def), Description: desc})
			case val.Kind == yaml.MappingNode && len(val.Content) > 0:
				walk(val, p+".")
			default:
				errs = append(errs, fmt.Errorf("%s: %s has no `# --` comment", path, p))
			}
		}
	}
	walk(doc.Content[0], "")
	return out, errors.Join(errs...)
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
