package api_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"sandbox.io/injector/runner/api"
)

// The OpenAPI document (openapi.yaml) describes the runner's API for other
// languages. These tests hold it to the Go types field by field and to the
// routes the runner serves, so that neither can change alone. (The YAML
// library is a test dependency only: the runner binary links none.)

// oaSchema is the part of an OpenAPI 3.0 schema object the checks read.
type oaSchema struct {
	Ref                  string               `json:"$ref"`
	Type                 string               `json:"type"`
	Format               string               `json:"format"`
	Nullable             bool                 `json:"nullable"`
	Enum                 []any                `json:"enum"`
	AllOf                []*oaSchema          `json:"allOf"`
	Items                *oaSchema            `json:"items"`
	Properties           map[string]*oaSchema `json:"properties"`
	Required             []string             `json:"required"`
	AdditionalProperties json.RawMessage      `json:"additionalProperties"`
}

type oaMedia struct {
	Schema *oaSchema `json:"schema"`
}

type oaResponse struct {
	Ref     string             `json:"$ref"`
	Content map[string]oaMedia `json:"content"`
}

type oaOperation struct {
	OperationID string                 `json:"operationId"`
	Security    *[]map[string][]string `json:"security"`
	RequestBody *struct {
		Content map[string]oaMedia `json:"content"`
	} `json:"requestBody"`
	Responses map[string]oaResponse `json:"responses"`
}

type oaDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Security   []map[string][]string                 `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
			In     string `json:"in"`
			Name   string `json:"name"`
		} `json:"securitySchemes"`
		Responses map[string]oaResponse `json:"responses"`
		Schemas   map[string]*oaSchema  `json:"schemas"`
	} `json:"components"`
}

func loadDoc(t *testing.T) *oaDoc {
	t.Helper()
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatalf("parsing openapi.yaml: %v", err)
	}
	var d oaDoc
	if err := json.Unmarshal(j, &d); err != nil {
		t.Fatalf("decoding openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(d.OpenAPI, "3.0.") {
		t.Fatalf("openapi.yaml is OpenAPI %q; the checks read 3.0 (nullable)", d.OpenAPI)
	}
	return &d
}

// wireTypes are the Go types with a schema of the same name.
var wireTypes = map[string]reflect.Type{
	"ExecuteRequest": reflect.TypeFor[api.ExecuteRequest](),
	"ExecuteResult":  reflect.TypeFor[api.ExecuteResult](),
	"StreamEvent":    reflect.TypeFor[api.StreamEvent](),
	"Status":         reflect.TypeFor[api.Status](),
	"ChildStatus":    reflect.TypeFor[api.ChildStatus](),
	"FileInfo":       reflect.TypeFor[api.FileInfo](),
	"Error":          reflect.TypeFor[api.Error](),
	"ClaimRequest":   reflect.TypeFor[api.ClaimRequest](),
	"ClaimStatus":    reflect.TypeFor[api.ClaimStatus](),
	"ExitStatus":     reflect.TypeFor[api.ExitStatus](),
}

// strictTypes are decoded with DisallowUnknownFields, so their schemas must
// say additionalProperties: false.
var strictTypes = []string{"ExecuteRequest", "ClaimRequest"}

// jsonField is one member of a type's JSON object as encoding/json writes it.
type jsonField struct {
	name     string
	typ      reflect.Type
	required bool // always written
	nullable bool // may be written as null
}

// jsonFields lists the JSON members of struct type t, embedded structs
// flattened; members of an embedded pointer are absent when it is nil, so
// they are never required.
func jsonFields(t reflect.Type, viaPtr bool) []jsonField {
	var out []jsonField
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft, ptr := f.Type, false
			if ft.Kind() == reflect.Pointer {
				ft, ptr = ft.Elem(), true
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonFields(ft, viaPtr || ptr)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		optional := slices.Contains(strings.Split(opts, ","), "omitempty") || slices.Contains(strings.Split(opts, ","), "omitzero")
		k := f.Type.Kind()
		out = append(out, jsonField{
			name:     name,
			typ:      f.Type,
			required: !optional && !viaPtr,
			nullable: !optional && (k == reflect.Pointer || k == reflect.Slice || k == reflect.Map),
		})
	}
	return out
}

var timeType = reflect.TypeFor[time.Time]()

// checkType reports where schema s does not describe a value of type typ.
func checkType(t *testing.T, where string, s *oaSchema, typ reflect.Type, nullable bool) {
	t.Helper()
	if s == nil {
		t.Errorf("%s: no schema", where)
		return
	}
	if s.Nullable != nullable {
		t.Errorf("%s: nullable is %v, want %v (Go type %s)", where, s.Nullable, nullable, typ)
	}
	if len(s.AllOf) == 1 { // the 3.0 way to make a $ref nullable
		s = s.AllOf[0]
	}
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	want := ""
	switch {
	case typ == timeType:
		if s.Type != "string" || s.Format != "date-time" {
			t.Errorf("%s: type %q format %q, want string date-time", where, s.Type, s.Format)
		}
		return
	case typ.Kind() == reflect.Struct:
		if wantRef := "#/components/schemas/" + typ.Name(); s.Ref != wantRef {
			t.Errorf("%s: $ref %q, want %q", where, s.Ref, wantRef)
		}
		if _, ok := wireTypes[typ.Name()]; !ok {
			t.Errorf("%s: Go type %s has no entry in wireTypes, so its schema is not checked", where, typ)
		}
		return
	case typ.Kind() == reflect.String:
		want = "string"
	case typ.Kind() == reflect.Bool:
		want = "boolean"
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64:
		want = "integer"
		if s.Format != "" && s.Format != "int32" && s.Format != "int64" {
			t.Errorf("%s: integer format %q", where, s.Format)
		}
		if typ.Kind() >= reflect.Uint && s.Format == "int32" {
			t.Errorf("%s: format int32 for %s", where, typ)
		}
	case typ.Kind() == reflect.Float32 || typ.Kind() == reflect.Float64:
		want = "number"
	case typ.Kind() == reflect.Slice:
		if s.Type != "array" {
			t.Errorf("%s: type %q, want array (Go type %s)", where, s.Type, typ)
			return
		}
		checkType(t, where+"[]", s.Items, typ.Elem(), false)
		return
	case typ.Kind() == reflect.Map && typ.Key().Kind() == reflect.String:
		if s.Type != "object" {
			t.Errorf("%s: type %q, want object (Go type %s)", where, s.Type, typ)
			return
		}
		var ap oaSchema
		if err := json.Unmarshal(s.AdditionalProperties, &ap); err != nil {
			t.Errorf("%s: additionalProperties is not a schema: %v", where, err)
			return
		}
		checkType(t, where+"{}", &ap, typ.Elem(), false)
		return
	default:
		t.Errorf("%s: Go type %s has no mapping in this test; extend checkType", where, typ)
		return
	}
	if s.Type != want {
		t.Errorf("%s: type %q, want %s (Go type %s)", where, s.Type, want, typ)
	}
}

func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	t.Parallel()
	d := loadDoc(t)
	var names []string
	for n := range d.Components.Schemas {
		names = append(names, n)
	}
	var want []string
	for n := range wireTypes {
		want = append(want, n)
	}
	sort.Strings(names)
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Errorf("schemas %v, want exactly the wire types %v", names, want)
	}
	for name, typ := range wireTypes {
		s := d.Components.Schemas[name]
		if s == nil {
			continue
		}
		if s.Type != "object" {
			t.Errorf("%s: type %q, want object", name, s.Type)
		}
		fields := jsonFields(typ, false)
		var goNames, goRequired []string
		for _, f := range fields {
			goNames = append(goNames, f.name)
			if f.required {
				goRequired = append(goRequired, f.name)
			}
			checkType(t, name+"."+f.name, s.Properties[f.name], f.typ, f.nullable)
		}
		var docNames []string
		for n := range s.Properties {
			docNames = append(docNames, n)
		}
		sort.Strings(goNames)
		sort.Strings(docNames)
		if !slices.Equal(goNames, docNames) {
			t.Errorf("%s: properties %v, the Go type has %v", name, docNames, goNames)
		}
		req := slices.Clone(s.Required)
		sort.Strings(req)
		sort.Strings(goRequired)
		if !slices.Equal(req, goRequired) {
			t.Errorf("%s: required %v, want the members always written %v", name, req, goRequired)
		}
	}
	for _, name := range strictTypes {
		if s := d.Components.Schemas[name]; s != nil && string(s.AdditionalProperties) != "false" {
			t.Errorf("%s: additionalProperties %s, want false (the runner refuses unknown fields)", name, s.AdditionalProperties)
		}
	}
	// Enums that the Go code defines as constants.
	schemas := d.Components.Schemas
	for _, tc := range []struct {
		where string
		s     *oaSchema
		want  []any
	}{
		{"StreamEvent.stream", schemas["StreamEvent"].Properties["stream"], []any{api.StreamStdout, api.StreamStderr}},
		{"Status.mode", schemas["Status"].Properties["mode"], []any{api.ModeServer, api.ModeWrap}},
		{"ClaimRequest.protocol", schemas["ClaimRequest"].Properties["protocol"], []any{api.ClaimProtocol}},
	} {
		if tc.s == nil {
			continue
		}
		got, want := fmt.Sprint(tc.s.Enum), fmt.Sprint(tc.want)
		if got != want {
			t.Errorf("%s: enum %s, want %s", tc.where, got, want)
		}
	}
}

// paths are the path constants of contract.go, by name, for routes.
var paths = map[string]string{
	"PathHealthz": api.PathHealthz,
	"PathReadyz":  api.PathReadyz,
	"PathStatus":  api.PathStatus,
	"PathMetrics": api.PathMetrics,
	"PathExecute": api.PathExecute,
	"PathClaim":   api.PathClaim,
	"PathFiles":   api.PathFiles,
}

// routes are the runner's ServeMux patterns, read from its source so that a
// route added there without a path here fails this test. A pattern is
// written "METHOD "+api.PathX, with an optional +"/rest" after it.
func routes(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("../server.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`mux\.HandleFunc\("([A-Z]+) "\s*\+\s*api\.(\w+)(?:\s*\+\s*"([^"]*)")?,`).FindAllStringSubmatch(string(src), -1) {
		p, ok := paths[m[2]]
		if !ok {
			t.Fatalf("../server.go routes api.%s, which is not a path constant of contract.go", m[2])
		}
		out = append(out, m[1]+" "+strings.ReplaceAll(p+m[3], "...}", "}"))
		used[m[2]] = true
	}
	for name := range paths {
		if !used[name] {
			t.Errorf("api.%s is a path the runner does not route", name)
		}
	}
	if len(out) < 5 {
		t.Fatalf("found only %d routes in ../server.go: %v", len(out), out)
	}
	sort.Strings(out)
	return out
}

func TestOpenAPIPathsAreTheRunnersRoutes(t *testing.T) {
	t.Parallel()
	d := loadDoc(t)
	ops := operations(t, d)
	var got []string
	for k := range ops {
		got = append(got, k)
	}
	sort.Strings(got)
	if want := routes(t); !slices.Equal(got, want) {
		t.Errorf("openapi.yaml operations\n  %v\nthe runner serves\n  %v", got, want)
	}

	ref := func(name string) string { return "#/components/schemas/" + name }
	// What each operation takes and answers with (200), in JSON.
	for _, tc := range []struct {
		op, request, response string
		array                 bool
	}{
		{op: "GET /status", response: ref("Status")},
		{op: "POST /claim", request: ref("ClaimRequest"), response: ref("ClaimStatus")},
		{op: "POST /execute", request: ref("ExecuteRequest"), response: ref("ExecuteResult")},
		{op: "GET /files", response: ref("FileInfo"), array: true},
	} {
		op, ok := ops[tc.op]
		if !ok {
			continue
		}
		if tc.request != "" {
			if op.RequestBody == nil || op.RequestBody.Content[api.ContentTypeJSON].Schema == nil ||
				op.RequestBody.Content[api.ContentTypeJSON].Schema.Ref != tc.request {
				t.Errorf("%s: request body is not %s %s", tc.op, api.ContentTypeJSON, tc.request)
			}
		}
		s := op.Responses["200"].Content[api.ContentTypeJSON].Schema
		if s != nil && tc.array {
			if s.Type != "array" {
				t.Errorf("%s: 200 answer is %q, want an array", tc.op, s.Type)
			}
			s = s.Items
		}
		if s == nil || s.Ref != tc.response {
			t.Errorf("%s: 200 %s answer is not %s", tc.op, api.ContentTypeJSON, tc.response)
		}
	}
	if s := ops["POST /execute"].Responses["200"].Content[api.ContentTypeNDJSON].Schema; s == nil || s.Ref != ref("StreamEvent") {
		t.Errorf("POST /execute: no %s answer of StreamEvent", api.ContentTypeNDJSON)
	}
	// Every error answer is an api.Error.
	for key, op := range ops {
		for code, r := range op.Responses {
			if code[0] != '4' && code[0] != '5' {
				continue
			}
			if r.Ref != "" {
				name := strings.TrimPrefix(r.Ref, "#/components/responses/")
				r = d.Components.Responses[name]
			}
			if key == "GET /readyz" {
				continue // a probe answers text
			}
			if s := r.Content[api.ContentTypeJSON].Schema; s == nil || s.Ref != ref("Error") {
				t.Errorf("%s: %s answer is not %s Error", key, code, api.ContentTypeJSON)
			}
		}
	}
}

func operations(t *testing.T, d *oaDoc) map[string]oaOperation {
	t.Helper()
	ops := map[string]oaOperation{}
	for path, item := range d.Paths {
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			var op oaOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			ops[strings.ToUpper(method)+" "+path] = op
		}
	}
	return ops
}

func TestOpenAPISecurity(t *testing.T) {
	t.Parallel()
	d := loadDoc(t)
	ss := d.Components.SecuritySchemes
	if b := ss["bearerAuth"]; b.Type != "http" || b.Scheme != "bearer" {
		t.Errorf("bearerAuth is %+v, want http bearer", b)
	}
	if k := ss["sandboxToken"]; k.Type != "apiKey" || k.In != "header" || k.Name != api.TokenHeader {
		t.Errorf("sandboxToken is %+v, want an apiKey in header %s", k, api.TokenHeader)
	}
	var global []string
	for _, req := range d.Security {
		for k := range req {
			global = append(global, k)
		}
	}
	sort.Strings(global)
	if !slices.Equal(global, []string{"bearerAuth", "sandboxToken"}) {
		t.Errorf("global security %v, want either bearerAuth or sandboxToken", global)
	}
	for key, op := range operations(t, d) {
		probe := key == "GET /healthz" || key == "GET /readyz"
		open := op.Security != nil && len(*op.Security) == 0
		if probe != open {
			t.Errorf("%s: open to everyone is %v, want %v (only the probes answer without a token)", key, open, probe)
		}
		if !probe && op.Responses["401"].Ref == "" && op.Responses["401"].Content == nil {
			t.Errorf("%s: no 401 answer", key)
		}
	}
}
