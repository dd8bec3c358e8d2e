package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/util/jsonpath"

	"sandbox.io/injector/api/v1alpha1"
)

// scheme types the objects sandboxctl prints (apiVersion and kind).
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := corev1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// Output formats a command prints itself: its human format ("") and the
// same as a table with more columns (wide).
const (
	outputDefault = ""
	outputWide    = "wide"
)

// outputFlags is -o of a command that prints objects: kubectl's PrintFlags
// (json, yaml, kyaml, name, go-template, jsonpath, ...), custom-columns, and
// the command's own human and wide formats.
type outputFlags struct {
	print     *genericclioptions.PrintFlags
	noHeaders bool
	tables    bool
}

// newOutputFlags returns the -o flags; operation is what -o name prints
// after the name when the command printed nothing else ("released").
// tables says the command has --no-headers for its tables.
func newOutputFlags(operation string, tables bool) *outputFlags {
	return &outputFlags{print: genericclioptions.NewPrintFlags(operation).WithTypeSetter(scheme), tables: tables}
}

func (o *outputFlags) addFlags(cmd *cobra.Command) {
	o.print.JSONYamlPrintFlags.AddFlags(cmd)
	o.print.TemplatePrinterFlags.AddFlags(cmd)
	formats := append([]string{outputWide}, o.print.AllowedFormats()...)
	formats = append(formats, "custom-columns", "custom-columns-file")
	cmd.Flags().StringVarP(o.print.OutputFormat, "output", "o", "", "output format, as kubectl's: one of ("+strings.Join(formats, ", ")+")")
	o.print.OutputFlagSpecified = func() bool { return cmd.Flag("output").Changed }
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return formats, cobra.ShellCompDirectiveNoFileComp
	})
	if o.tables {
		cmd.Flags().BoolVar(&o.noHeaders, "no-headers", false, "print tables (the default and wide output, custom-columns) without their header")
	}
}

// format is the -o value.
func (o *outputFlags) format() string { return *o.print.OutputFormat }

// human reports whether the command prints in its own format (default or
// wide).
func (o *outputFlags) human() bool {
	return o.format() == outputDefault || o.format() == outputWide
}

// printer returns the printer of -o when it is not a human format; it is
// also how a command checks -o before doing anything.
func (o *outputFlags) printer() (printers.ResourcePrinter, error) {
	if o.human() {
		return nil, nil
	}
	if kind, spec, ok := strings.Cut(o.format(), "="); ok && (kind == "custom-columns" || kind == "custom-columns-file") {
		if kind == "custom-columns-file" {
			b, err := os.ReadFile(spec)
			if err != nil {
				return nil, fmt.Errorf("-o custom-columns-file: %w", err)
			}
			spec = strings.TrimSpace(string(b))
		}
		return newColumnsPrinter(spec, o.noHeaders)
	}
	if o.format() == "custom-columns" || o.format() == "custom-columns-file" {
		return nil, fmt.Errorf("-o %s needs a value: -o custom-columns=NAME:.json.path,... or -o custom-columns-file=FILE", o.format())
	}
	if o.format() == "name" {
		// -o name prints only TYPE/NAME, whatever the operation.
		o.print.NamePrintFlags.Operation = ""
	}
	p, err := o.print.ToPrinter()
	if err != nil {
		return nil, fmt.Errorf("-o %s: %w", o.format(), err)
	}
	return p, nil
}

// table prints a table in the default or wide format.
func (o *outputFlags) table(t *metav1.Table, withNamespace bool, w io.Writer) error {
	p := printers.NewTablePrinter(printers.PrintOptions{Wide: o.format() == outputWide, WithNamespace: withNamespace, NoHeaders: o.noHeaders})
	return p.PrintObj(t, w)
}

// printList prints l with p; the name printer takes one object at a time.
func (o *outputFlags) printList(p printers.ResourcePrinter, l *metav1.List, w io.Writer) error {
	if o.format() != "name" {
		return p.PrintObj(l, w)
	}
	for _, item := range l.Items {
		if err := p.PrintObj(item.Object, w); err != nil {
			return err
		}
	}
	return nil
}

// list is a kubectl-style v1 List of typed items, for -o json, yaml, name,
// jsonpath and templates of several objects.
func list[T any, P interface {
	*T
	runtime.Object
}](items []T, gvk schema.GroupVersionKind) *metav1.List {
	l := &metav1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}, Items: []runtime.RawExtension{}}
	for i := range items {
		obj := P(&items[i])
		obj.GetObjectKind().SetGroupVersionKind(gvk)
		l.Items = append(l.Items, runtime.RawExtension{Object: obj})
	}
	return l
}

// columnsPrinter is -o custom-columns=HEADER:JSONPATH,...
type columnsPrinter struct {
	headers   []string
	paths     []*jsonpath.JSONPath
	noHeaders bool
}

func newColumnsPrinter(spec string, noHeaders bool) (*columnsPrinter, error) {
	p := &columnsPrinter{noHeaders: noHeaders}
	if spec == "" {
		return nil, fmt.Errorf("-o custom-columns: the column spec is empty (want NAME:.json.path,...)")
	}
	for _, col := range strings.Split(spec, ",") {
		header, expr, ok := strings.Cut(col, ":")
		if !ok || header == "" || expr == "" {
			return nil, fmt.Errorf("-o custom-columns: %q is not HEADER:JSONPATH", col)
		}
		jp := jsonpath.New(header).AllowMissingKeys(true)
		if err := jp.Parse(relaxedJSONPath(expr)); err != nil {
			return nil, fmt.Errorf("-o custom-columns: column %s: %w", header, err)
		}
		p.headers = append(p.headers, header)
		p.paths = append(p.paths, jp)
	}
	return p, nil
}

// relaxedJSONPath accepts .a.b, a.b and {.a.b} as kubectl does.
func relaxedJSONPath(expr string) string {
	if strings.HasPrefix(expr, "{") {
		return expr
	}
	if !strings.HasPrefix(expr, ".") {
		expr = "." + expr
	}
	return "{" + expr + "}"
}

func (p *columnsPrinter) PrintObj(obj runtime.Object, out io.Writer) error {
	objs := []runtime.Object{obj}
	if meta.IsListType(obj) {
		items, err := meta.ExtractList(obj)
		if err != nil {
			return fmt.Errorf("reading the list to print: %w", err)
		}
		objs = items
	}
	w := tabwriter.NewWriter(out, 10, 4, 3, ' ', 0)
	if !p.noHeaders {
		fmt.Fprintln(w, strings.Join(p.headers, "\t"))
	}
	for _, o := range objs {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return fmt.Errorf("converting %T to print it: %w", o, err)
		}
		cells := make([]string, len(p.paths))
		for i, jp := range p.paths {
			values, err := jp.FindResults(u)
			if err != nil {
				return fmt.Errorf("-o custom-columns: column %s: %w", p.headers[i], err)
			}
			var vals []string
			for _, set := range values {
				for _, v := range set {
					vals = append(vals, fmt.Sprint(v.Interface()))
				}
			}
			cells[i] = strings.Join(vals, ",")
			if cells[i] == "" {
				cells[i] = "<none>"
			}
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	return w.Flush()
}
