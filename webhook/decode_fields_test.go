package webhook

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// TestMutationReadsOnlyDecodedFields holds the webhook to the partial pod
// DecodePod builds. DecodePod fills a corev1.Pod with the fields podView
// lists and leaves every other field empty, so code that reads any other
// field would silently see nothing (no env, no volumes' sources, no probe
// bodies) and decide wrongly, with every test that builds its pods by hand
// still green.
//
// The design: podView is the one declared list of what may be read, and
// this test derives the allowed fields from it (by reflection, matching
// podView's JSON names to the corev1 fields of the same JSON name), then
// type-checks the package's own non-test files (go/types, with the
// dependencies' export data from `go list -export`) and finds every
// selector that reads a field of a type podView decodes in part: Pod (its
// TypeMeta and Status are not decoded at all), ObjectMeta, PodSpec,
// Container and Volume. Each step of a promoted field counts: pod.Name
// reads Pod.ObjectMeta, then ObjectMeta.Name. A read of a field podView does not
// decode fails the test, naming the file, the line and the field: decode
// it (add it to podView and DecodePod) or read it some other way. A field
// decoded only as present (a probe, json.RawMessage in podView) allows the
// nil check but none of the Probe's own fields. Writes (the left side of
// an assignment) are not reads; decode.go, which fills the pod, is not
// checked. A value of one of these types that the package builds itself
// and then reads would be a false finding: list it in builtHere, saying
// why (there is none today).
//
// The same holds for other packages: passing the pod, its spec or a
// container to a function of another package (other than a value the call
// builds on the spot, a call's result or a literal), or calling a method
// another package defines on them (pod.GetOwnerReferences()), hands them
// the partial pod, and their reads cannot be seen here, so these fail too
// unless handedOut lists the function, having checked what it reads.
//
// What it cannot see: a presence-only field copied to a variable first
// (p := c.LivenessProbe; p.Exec), and reads through reflection or
// interfaces; TestUndecodedReadsFound shows what it does find.
func TestMutationReadsOnlyDecodedFields(t *testing.T) {
	t.Parallel()
	exports := exportData(t)
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string][]byte{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		if sources[name], err = os.ReadFile(name); err != nil {
			t.Fatal(err)
		}
	}
	// decode.go is type-checked but not searched: it fills the pod.
	for _, b := range undecodedReads(t, exports, "sandbox.io/injector/webhook", sources, "decode.go") {
		t.Error(b)
	}
}

// TestUndecodedReadsFound checks that the check above finds each kind of
// read it is meant to find, in a package made up for it.
func TestUndecodedReadsFound(t *testing.T) {
	t.Parallel()
	src := `package fake

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
)

func reads(pod *corev1.Pod, c *corev1.Container) {
	_ = pod.Name + pod.Spec.NodeName + c.Image          // decoded
	_ = c.LivenessProbe != nil                           // decoded as present
	_ = pod.Spec.Tolerations                             // not decoded
	_ = c.Env                                            // not decoded
	_ = pod.Kind                                         // TypeMeta is not decoded
	_ = pod.Spec.Volumes[0].Secret                       // Volume: only the name
	_ = c.ReadinessProbe.HTTPGet                         // present only
	_, _ = json.Marshal(pod)                             // handed out
	_, _ = json.Marshal(corev1.Container{Name: c.Name}) // built here
	pod.Spec.Hostname = "x"                              // a write
	_ = pod.GetOwnerReferences()                         // a method of another package
}
`
	got := undecodedReads(t, exportData(t), "fake", map[string][]byte{"fake.go": []byte(src)}, "")
	want := []string{
		"fake.go:12 (reads) reads PodSpec.Tolerations, which DecodePod does not decode",
		"fake.go:13 (reads) reads Container.Env, which DecodePod does not decode",
		"fake.go:14 (reads) reads Pod.TypeMeta, which DecodePod does not decode",
		"fake.go:15 (reads) reads Volume.VolumeSource, which DecodePod does not decode",
		"fake.go:16 (reads) reads a field of Container.ReadinessProbe, which DecodePod decodes as present only (an empty Probe)",
		"fake.go:17 (reads) hands a partial Pod to encoding/json.Marshal, whose reads this test cannot see",
		"fake.go:20 (reads) calls (*k8s.io/apimachinery/pkg/apis/meta/v1.ObjectMeta).GetOwnerReferences on a partial Pod, whose reads this test cannot see",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

// undecodedReads type-checks the package pkgPath made of sources and
// returns, sorted, every read (outside the file skip) of a field DecodePod does not decode and
// every hand-out of a partial value (see TestMutationReadsOnlyDecodedFields).
func undecodedReads(t *testing.T, exports map[string]string, pkgPath string, sources map[string][]byte, skip string) []string {
	t.Helper()
	allowed, checked, presence := decodedFields()
	pkg, info, files := typeCheck(t, exports, pkgPath, sources)
	var bad []string
	report := func(fn string, pos token.Pos, format string, args ...any) {
		p := info.FileSet.Position(pos)
		bad = append(bad, fmt.Sprintf("%s:%d (%s) ", filepath.Base(p.Filename), p.Line, fn)+fmt.Sprintf(format, args...))
	}
	// presentOnly is the field of a presence-only value that e reads, if any.
	presentOnly := func(e ast.Expr) string {
		if s, ok := ast.Unparen(e).(*ast.SelectorExpr); ok {
			if fields := readFields(info, s, checked); len(fields) > 0 && presence[fields[len(fields)-1]] {
				return fields[len(fields)-1]
			}
		}
		return ""
	}
	for _, f := range files {
		if filepath.Base(info.FileSet.Position(f.Pos()).Filename) == skip {
			continue
		}
		writes := map[ast.Expr]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			if a, ok := n.(*ast.AssignStmt); ok {
				for _, l := range a.Lhs {
					writes[l] = true
				}
			}
			return true
		})
		var fn string
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				fn = n.Name.Name
			case *ast.SelectorExpr:
				if s := info.Selections[n]; s != nil && s.Kind() == types.MethodVal {
					m := s.Obj().(*types.Func)
					if named := namedStruct(s.Recv()); checked[named] && m.Pkg() != pkg && !handedOut[m.FullName()] {
						report(fn, n.Pos(), "calls %s on a partial %s, whose reads this test cannot see", m.FullName(), named)
					}
				}
				if field := presentOnly(n.X); field != "" && info.Selections[n] != nil {
					report(fn, n.Pos(), "reads a field of %s, which DecodePod decodes as present only (an empty Probe)", field)
				}
				if writes[n] {
					return true
				}
				for _, field := range readFields(info, n, checked) {
					if !allowed[field] && !builtHere[fn+" "+field] {
						report(fn, n.Pos(), "reads %s, which DecodePod does not decode", field)
					}
				}
			case *ast.CallExpr:
				callee := calledFunc(info, n)
				if callee == nil || callee.Pkg() == nil || callee.Pkg() == pkg || handedOut[callee.FullName()] {
					return true
				}
				for _, arg := range n.Args {
					// A value built by a call or a literal is the package's
					// own, not the decoded pod.
					switch a := ast.Unparen(arg).(type) {
					case *ast.CallExpr, *ast.CompositeLit:
						continue
					case *ast.UnaryExpr:
						if _, lit := ast.Unparen(a.X).(*ast.CompositeLit); lit {
							continue
						}
					}
					if named := namedStruct(info.Types[arg].Type); checked[named] || presentOnly(arg) != "" {
						report(fn, n.Pos(), "hands a partial %s to %s, whose reads this test cannot see", named, callee.FullName())
					}
				}
			}
			return true
		})
	}
	slices.Sort(bad)
	return bad
}

// builtHere are reads, by function, of fields of values the package builds
// itself rather than decodes: "function Type.Field".
var builtHere = map[string]bool{}

// handedOut are functions of other packages that may be given the partial
// pod (or its spec or a container), by their full name, because what they
// read is decoded.
var handedOut = map[string]bool{}

// typeKey names a struct type: "Pod", "ObjectMeta", ...
func typeKey(t reflect.Type) string { return t.Name() }

// decodedFields derives from podView the fields DecodePod fills, as
// "Type.Field" (allowed), the types whose fields are checked (those podView
// decodes in part), and the fields decoded as present only (presence).
func decodedFields() (allowed, checked, presence map[string]bool) {
	allowed, checked, presence = map[string]bool{}, map[string]bool{}, map[string]bool{}
	rawMessage := reflect.TypeFor[json.RawMessage]()
	var walk func(view, target reflect.Type)
	walk = func(view, target reflect.Type) {
		checked[typeKey(target)] = true
		for i := range view.NumField() {
			vf := view.Field(i)
			tf, ok := fieldByJSONName(target, jsonName(vf))
			if !ok {
				panic(fmt.Sprintf("podView field %s (json %q) has no %s field of that JSON name", vf.Name, jsonName(vf), target.Name()))
			}
			allowed[typeKey(target)+"."+tf.Name] = true
			vt, tt := elem(vf.Type), elem(tf.Type)
			switch {
			case vf.Type == rawMessage:
				// Decoded as present only: an empty value, none of its own
				// fields. Its type is not checked as a whole (the package
				// builds probes of its own, from annotations), only reads
				// through this field.
				presence[typeKey(target)+"."+tf.Name] = true
			case vt.Kind() == reflect.Struct && vt.PkgPath() == reflect.TypeFor[podView]().PkgPath():
				walk(vt, tt) // a view of its own: only what it lists
			case vt.Kind() == reflect.Struct && vt.Name() == "":
				walk(vt, tt) // podView's inline Metadata and Spec
			}
		}
	}
	walk(reflect.TypeFor[podView](), reflect.TypeFor[corev1.Pod]())
	return allowed, checked, presence
}

func elem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	return t
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// fieldByJSONName finds the field of t with that JSON name (Pod's
// embedded ObjectMeta is "metadata").
func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); jsonName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// readFields returns the fields of checked types that selector sel reads,
// as "Type.Field", one per step of its path (pod.Name reads Pod.ObjectMeta
// and ObjectMeta.Name).
func readFields(info *checkedInfo, sel *ast.SelectorExpr, checked map[string]bool) []string {
	s := info.Selections[sel]
	if s == nil || s.Kind() != types.FieldVal {
		return nil
	}
	var out []string
	cur := s.Recv()
	for _, idx := range s.Index() {
		if p, ok := cur.(*types.Pointer); ok {
			cur = p.Elem()
		}
		st, ok := cur.Underlying().(*types.Struct)
		if !ok {
			return out
		}
		f := st.Field(idx)
		if name := namedStruct(cur); name != "" && checked[name] {
			out = append(out, name+"."+f.Name())
		}
		cur = f.Type()
	}
	return out
}

// namedStruct is the name of a (pointer to a) named struct type of the
// Kubernetes API (corev1 or metav1), else "".
func namedStruct(t types.Type) string {
	if t == nil {
		return ""
	}
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	n, ok := t.(*types.Named)
	if !ok || n.Obj().Pkg() == nil {
		return ""
	}
	switch n.Obj().Pkg().Path() {
	case "k8s.io/api/core/v1", "k8s.io/apimachinery/pkg/apis/meta/v1":
		return n.Obj().Name()
	}
	return ""
}

func calledFunc(info *checkedInfo, call *ast.CallExpr) *types.Func {
	var id *ast.Ident
	switch f := call.Fun.(type) {
	case *ast.Ident:
		id = f
	case *ast.SelectorExpr:
		id = f.Sel
	default:
		return nil
	}
	fn, _ := info.Uses[id].(*types.Func)
	return fn
}

type checkedInfo struct {
	*types.Info
	FileSet *token.FileSet
}

// exportData maps the import path of each dependency of this package to
// its export data, as `go list -export` reports it (built, or taken from
// the build cache).
func exportData(t *testing.T) map[string]string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}", ".")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export: %v\n%s", err, stderr.Bytes())
	}
	exports := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if path, file, ok := strings.Cut(sc.Text(), "\t"); ok && file != "" {
			exports[path] = file
		}
	}
	return exports
}

// typeCheck parses and type-checks sources as the package pkgPath,
// importing from exports.
func typeCheck(t *testing.T, exports map[string]string, pkgPath string, sources map[string][]byte) (*types.Package, *checkedInfo, []*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	})
	names := slices.Sorted(maps.Keys(sources))
	var files []*ast.File
	for _, name := range names {
		f, err := parser.ParseFile(fset, name, sources[name], parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	info := &types.Info{
		Types:      map[ast.Expr]types.TypeAndValue{},
		Uses:       map[*ast.Ident]types.Object{},
		Selections: map[*ast.SelectorExpr]*types.Selection{},
	}
	pkg, err := (&types.Config{Importer: imp}).Check(pkgPath, fset, files, info)
	if err != nil {
		t.Fatalf("type-checking %s: %v", pkgPath, err)
	}
	return pkg, &checkedInfo{Info: info, FileSet: fset}, files
}
