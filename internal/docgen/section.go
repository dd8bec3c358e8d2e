package docgen

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// EndMarker closes every generated section.
const EndMarker = "<!-- end -->"

// ErrStale reports a generated file or section that differs from what its
// generator makes.
var ErrStale = errors.New("stale")

// BeginMarker is the line that opens the generated section name.
func BeginMarker(name string) string { return "<!-- " + name + " -->" }

// Replace returns doc with the lines between the line BeginMarker(name) and
// the next EndMarker line replaced by body (a trailing newline is added
// when missing). The marker lines stay. It is an error when doc has no such
// section, or has it twice.
func Replace(doc []byte, name, body string) ([]byte, error) {
	begin := []byte("\n" + BeginMarker(name) + "\n")
	i := bytes.Index(append([]byte("\n"), doc...), begin)
	if i < 0 {
		return nil, fmt.Errorf("no line %q", BeginMarker(name))
	}
	if bytes.Count(append([]byte("\n"), doc...), begin) > 1 {
		return nil, fmt.Errorf("line %q appears more than once", BeginMarker(name))
	}
	start := i + len(begin) - 1 // after the begin line, in doc
	end := bytes.Index(doc[start:], []byte(EndMarker+"\n"))
	if end < 0 || (end > 0 && doc[start+end-1] != '\n') {
		return nil, fmt.Errorf("section %q has no line %q after it", name, EndMarker)
	}
	if body != "" && body[len(body)-1] != '\n' {
		body += "\n"
	}
	out := make([]byte, 0, len(doc)+len(body))
	out = append(out, doc[:start]...)
	out = append(out, body...)
	return append(out, doc[start+end:]...), nil
}

// Update replaces the section name of the file at path with body. With
// write false it changes nothing and returns an error wrapping ErrStale
// when the section differs; with write true it rewrites the file when the
// section differs. changed says whether the section differed.
func Update(path, name, body string, write bool) (changed bool, err error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	out, err := Replace(doc, name, body)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return Sync(path, doc, out, write)
}

// Sync compares a file's current content with want. With write false a
// difference is an error wrapping ErrStale; with write true the file is
// rewritten. changed says whether they differed.
func Sync(path string, current, want []byte, write bool) (changed bool, err error) {
	if bytes.Equal(current, want) {
		return false, nil
	}
	if !write {
		return true, fmt.Errorf("%s is %w", path, ErrStale)
	}
	if err := os.WriteFile(path, want, 0o644); err != nil {
		return true, fmt.Errorf("writing %s: %w", path, err)
	}
	return true, nil
}

// RefreshEnv is the environment variable that, set to true, makes the
// tests that check a generated section rewrite it instead (see
// RefreshRequested).
const RefreshEnv = "REFRESH_README"

// RefreshRequested reports whether REFRESH_README=true asks tests that
// check a generated section (such as each command's TestReadmeFlags) to
// rewrite it.
func RefreshRequested() bool { return os.Getenv(RefreshEnv) == "true" }
