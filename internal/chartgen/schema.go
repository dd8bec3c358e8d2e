package chartgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// poolIdentity is the part of a pools entry that is not the SandboxPool's
// spec: its name and namespace (charts/sandbox-injector/templates/pools.yaml
// puts them into metadata and the rest into spec).
const poolIdentity = `{
  "name": {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    "description": "Name of the SandboxPool."
  },
  "namespace": {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    "description": "Namespace of the SandboxPool; not the release namespace, which is excluded from injection."
  }
}`

// PoolItems returns the JSON Schema of one entry of the chart's pools value
// from the SandboxPool CRD (YAML, as controller-gen writes it): name and
// namespace, then every field of the storage version's spec, as the API
// server validates it. The CRD's OpenAPI schema becomes JSON Schema: every
// object with properties is closed (additionalProperties: false, so that a
// misspelled field fails `helm install` instead of being pruned by the API
// server) unless the CRD keeps its unknown fields, nullable adds "null" to
// the type, and what JSON Schema does not know (x-kubernetes-* extensions,
// which CEL rules are, and OpenAPI formats such as int32) is left out.
func PoolItems(crd []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(crd, &doc); err != nil {
		return nil, fmt.Errorf("parsing the CRD: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("the CRD is empty")
	}
	versions := lookup(doc.Content[0], "spec", "versions")
	if versions == nil || versions.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("the CRD has no spec.versions")
	}
	var spec *yaml.Node
	for _, v := range versions.Content {
		if s := lookup(v, "storage"); s != nil && s.Value == "true" {
			spec = lookup(v, "schema", "openAPIV3Schema", "properties", "spec")
		}
	}
	if spec == nil {
		return nil, fmt.Errorf("the CRD's storage version has no schema.openAPIV3Schema.properties.spec")
	}
	spec, err := toJSONSchema(spec, "spec")
	if err != nil {
		return nil, err
	}
	props := lookup(spec, "properties")
	if props == nil {
		return nil, fmt.Errorf("the CRD's spec schema has no properties")
	}
	var identity yaml.Node
	if err := yaml.Unmarshal([]byte(poolIdentity), &identity); err != nil {
		return nil, fmt.Errorf("parsing the pool identity schema: %w", err)
	}
	required := seq(str("name"), str("namespace"))
	if r := lookup(spec, "required"); r != nil {
		required.Content = append(required.Content, r.Content...)
	}
	allProps := &yaml.Node{Kind: yaml.MappingNode}
	allProps.Content = append(allProps.Content, identity.Content[0].Content...)
	allProps.Content = append(allProps.Content, props.Content...)
	return mapping(
		"type", str("object"),
		"additionalProperties", boolean(false),
		"description", str("A SandboxPool the chart creates: its name and namespace, and the fields of its spec (generated from the SandboxPool CRD in crds/)."),
		"required", required,
		"properties", allProps,
	), nil
}

// toJSONSchema converts one OpenAPI v3 schema of a CRD (a mapping) into
// JSON Schema, as PoolItems describes; path names it in errors.
func toJSONSchema(n *yaml.Node, path string) (*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("schema of %s is not a mapping", path)
	}
	out := &yaml.Node{Kind: yaml.MappingNode}
	var typ *yaml.Node
	open, nullable, hasProps, hasAdditional := false, false, false, false
	var rest []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch key := k.Value; {
		case key == "x-kubernetes-preserve-unknown-fields":
			open = v.Value == "true"
		case strings.HasPrefix(key, "x-kubernetes-"), key == "format":
		case key == "nullable":
			nullable = v.Value == "true"
		case key == "type":
			typ = v
		case key == "properties":
			hasProps = true
			props := &yaml.Node{Kind: yaml.MappingNode}
			for j := 0; j+1 < len(v.Content); j += 2 {
				sub, err := toJSONSchema(v.Content[j+1], path+"."+v.Content[j].Value)
				if err != nil {
					return nil, err
				}
				props.Content = append(props.Content, v.Content[j], sub)
			}
			rest = append(rest, k, props)
		case key == "items" || (key == "additionalProperties" && v.Kind == yaml.MappingNode):
			hasAdditional = hasAdditional || key == "additionalProperties"
			sub, err := toJSONSchema(v, path+"."+key)
			if err != nil {
				return nil, err
			}
			rest = append(rest, k, sub)
		case key == "anyOf" || key == "allOf" || key == "oneOf":
			list := &yaml.Node{Kind: yaml.SequenceNode}
			for j, s := range v.Content {
				sub, err := toJSONSchema(s, fmt.Sprintf("%s.%s[%d]", path, key, j))
				if err != nil {
					return nil, err
				}
				list.Content = append(list.Content, sub)
			}
			rest = append(rest, k, list)
		default:
			hasAdditional = hasAdditional || key == "additionalProperties"
			rest = append(rest, k, v)
		}
	}
	if typ != nil {
		t := typ
		if nullable {
			t = seq(str(typ.Value), str("null"))
		}
		out.Content = append(out.Content, str("type"), t)
	}
	if hasProps && !open && !hasAdditional {
		out.Content = append(out.Content, str("additionalProperties"), boolean(false))
	}
	out.Content = append(out.Content, rest...)
	return out, nil
}

// SetPoolItems returns the values schema (JSON) with
// properties.pools.items replaced by items, the rest kept as it is, in
// its order.
func SetPoolItems(schema []byte, items *yaml.Node) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(schema, &doc); err != nil {
		return nil, fmt.Errorf("parsing the values schema: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("the values schema is empty")
	}
	pools := lookup(doc.Content[0], "properties", "pools")
	if pools == nil || pools.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the values schema has no properties.pools")
	}
	replaced := false
	for i := 0; i+1 < len(pools.Content); i += 2 {
		if pools.Content[i].Value == "items" {
			pools.Content[i+1], replaced = items, true
		}
	}
	if !replaced {
		pools.Content = append(pools.Content, str("items"), items)
	}
	var b bytes.Buffer
	if err := writeJSON(&b, doc.Content[0], ""); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// writeJSON writes n as JSON indented by two spaces, as
// json.MarshalIndent would, but in n's own key order.
func writeJSON(b *bytes.Buffer, n *yaml.Node, indent string) error {
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		open, closing, step := "{", "}", 2
		if n.Kind == yaml.SequenceNode {
			open, closing, step = "[", "]", 1
		}
		if len(n.Content) == 0 {
			b.WriteString(open + closing)
			return nil
		}
		b.WriteString(open)
		for i := 0; i < len(n.Content); i += step {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n" + indent + "  ")
			v := n.Content[i]
			if step == 2 {
				if err := writeString(b, n.Content[i].Value); err != nil {
					return err
				}
				b.WriteString(": ")
				v = n.Content[i+1]
			}
			if err := writeJSON(b, v, indent+"  "); err != nil {
				return err
			}
		}
		b.WriteString("\n" + indent + closing)
		return nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return writeString(b, n.Value)
		case "!!int", "!!float", "!!bool":
			if !json.Valid([]byte(n.Value)) {
				return fmt.Errorf("scalar %q (line %d) is not JSON", n.Value, n.Line)
			}
			b.WriteString(n.Value)
			return nil
		case "!!null":
			b.WriteString("null")
			return nil
		}
		return fmt.Errorf("scalar %q (line %d) has tag %s, which JSON has not", n.Value, n.Line, n.Tag)
	case yaml.AliasNode:
		return writeJSON(b, n.Alias, indent)
	}
	return fmt.Errorf("node of kind %v (line %d) has no JSON form", n.Kind, n.Line)
}

func writeString(b *bytes.Buffer, s string) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encoding %q: %w", s, err)
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	return nil
}

// lookup follows keys through nested mappings; nil when one is missing.
func lookup(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

func str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func boolean(v bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(v)}
}

func seq(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Content: items}
}

// mapping builds a mapping from alternating keys and values.
func mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Content = append(n.Content, str(kv[i].(string)), kv[i+1].(*yaml.Node))
	}
	return n
}
