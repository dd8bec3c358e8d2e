package docgen

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReplace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc, body, want, err string
	}{
		{name: "replaces", doc: "a\n<!-- x -->\nold\nlines\n<!-- end -->\nb\n", body: "new", want: "a\n<!-- x -->\nnew\n<!-- end -->\nb\n"},
		{name: "at the start, empty", doc: "<!-- x -->\n<!-- end -->\n", body: "n\n", want: "<!-- x -->\nn\n<!-- end -->\n"},
		{name: "empty body", doc: "<!-- x -->\nold\n<!-- end -->\n", want: "<!-- x -->\n<!-- end -->\n"},
		{name: "only its own section", doc: "<!-- y -->\nkeep\n<!-- end -->\n<!-- x -->\nold\n<!-- end -->\n", body: "n", want: "<!-- y -->\nkeep\n<!-- end -->\n<!-- x -->\nn\n<!-- end -->\n"},
		{name: "missing", doc: "<!-- y -->\n<!-- end -->\n", err: `no line "<!-- x -->"`},
		{name: "not a whole line", doc: "see <!-- x --> here\n<!-- end -->\n", err: `no line "<!-- x -->"`},
		{name: "twice", doc: "<!-- x -->\n<!-- end -->\n<!-- x -->\n<!-- end -->\n", err: "more than once"},
		{name: "unclosed", doc: "<!-- x -->\nold\n", err: "has no line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Replace([]byte(tc.doc), "x", tc.body)
			if tc.err != "" {
				if err == nil || !contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(path, []byte("<!-- x -->\nold\n<!-- end -->\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Update(path, "x", "new", false); !errors.Is(err, ErrStale) {
		t.Fatalf("check of a stale section: %v, want ErrStale", err)
	}
	if changed, err := Update(path, "x", "new", true); err != nil || !changed {
		t.Fatalf("write: changed %v, %v", changed, err)
	}
	if changed, err := Update(path, "x", "new", false); err != nil || changed {
		t.Fatalf("check after write: changed %v, %v", changed, err)
	}
}

func TestFlagTable(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("cert-dir", "/tmp/certs", "Directory with `dir` tls.crt | tls.key.")
	fs.Bool("claims", true, "Run the\ncontroller.")
	fs.Duration("ttl", time.Hour, "How long.")
	fs.String("name", "", "A name.")
	got := FlagTable(fs, func(n string) string { return "E_" + n })
	want := "| Flag | Environment | Default | Description |\n|---|---|---|---|\n" +
		"| `--cert-dir dir` | `E_cert-dir` | `/tmp/certs` | Directory with dir tls.crt \\| tls.key. |\n" +
		"| `--claims` | `E_claims` | `true` | Run the controller. |\n" +
		"| `--name string` | `E_name` |  | A name. |\n" +
		"| `--ttl duration` | `E_ttl` | `1h0m0s` | How long. |\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestCell(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"a\n  b":                   "a b",
		"x | y":                    `x \| y`,
		"sha256:<hex> and `<r>-x`": "sha256:&lt;hex> and `<r>-x`",
	}
	for in, want := range tests {
		if got := Cell(in); got != want {
			t.Errorf("Cell(%q) = %q, want %q", in, got, want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
