package agent

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ImageListKey is the key of the pre-pull ConfigMap that holds the image
// list (see ParseImageList). The chart writes it from agent.prepull.images.
const ImageListKey = "images"

// ListEntry is one image of the pre-pull list.
type ListEntry struct {
	// Ref is the image reference, by tag or digest.
	Ref string
	// PullSecrets are the dockerconfigjson Secrets (namespace/name) whose
	// credentials pull Ref.
	PullSecrets []types.NamespacedName
}

// ImageListError is one malformed entry of the list: the line it is on (1
// based), the entry as written and what is wrong with it.
type ImageListError struct {
	Line  int
	Entry string
	Err   error
}

func (e *ImageListError) Error() string {
	return fmt.Sprintf("line %d %q: %v", e.Line, e.Entry, e.Err)
}

func (e *ImageListError) Unwrap() error { return e.Err }

// maxListLine bounds one line of the list: a reference is at most a few
// hundred bytes, and a line this long is not a list a person wrote.
const maxListLine = 4096

// ParseImageList reads the pre-pull list: one image per line, written as
//
//	<reference> [<namespace>/<secret> ...]
//
// the reference followed by the pull secrets that hold its credentials,
// separated by spaces or tabs. Blank lines and everything after a "#" that
// starts a line or follows a space are ignored. A malformed entry (a
// reference that does not parse, a secret not written namespace/name) is
// left out and reported in the returned error, an errors.Join of
// *ImageListError, one per entry; the valid entries are returned either way.
func ParseImageList(text string) ([]ListEntry, error) {
	var out []ListEntry
	var errs []error
	for i, line := range strings.Split(text, "\n") {
		entry := strings.TrimSpace(stripComment(line))
		if entry == "" {
			continue
		}
		e, err := parseListLine(entry)
		if err != nil {
			errs = append(errs, &ImageListError{Line: i + 1, Entry: entry, Err: err})
			continue
		}
		out = append(out, e)
	}
	return out, errors.Join(errs...)
}

// stripComment cuts a "#" at the start of line or after a space or tab.
func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

func parseListLine(entry string) (ListEntry, error) {
	if len(entry) > maxListLine {
		return ListEntry{}, fmt.Errorf("entry is %d bytes long, over the limit of %d", len(entry), maxListLine)
	}
	fields := strings.Fields(entry)
	ref := fields[0]
	if _, err := name.ParseReference(ref); err != nil {
		return ListEntry{}, fmt.Errorf("image reference: %w", err)
	}
	e := ListEntry{Ref: ref}
	for _, f := range fields[1:] {
		nn, err := parseSecretRef(f)
		if err != nil {
			return ListEntry{}, err
		}
		if !slices.Contains(e.PullSecrets, nn) {
			e.PullSecrets = append(e.PullSecrets, nn)
		}
	}
	return e, nil
}

// parseSecretRef reads namespace/name.
func parseSecretRef(s string) (types.NamespacedName, error) {
	ns, n, ok := strings.Cut(s, "/")
	if !ok {
		return types.NamespacedName{}, fmt.Errorf("pull secret %q is not written namespace/name", s)
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return types.NamespacedName{}, fmt.Errorf("pull secret %q: namespace %q: %s", s, ns, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
		return types.NamespacedName{}, fmt.Errorf("pull secret %q: name %q: %s", s, n, strings.Join(errs, "; "))
	}
	return types.NamespacedName{Namespace: ns, Name: n}, nil
}

// FormatImageList writes entries in the form ParseImageList reads.
func FormatImageList(entries []ListEntry) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.Ref)
		for _, s := range e.PullSecrets {
			b.WriteString(" " + s.Namespace + "/" + s.Name)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// ImageListFromConfigMap reads the list from cm's ImageListKey. A nil cm
// (no ConfigMap) is an empty list. Other keys are reported as an error,
// since a misspelled key would otherwise leave the list silently empty.
func ImageListFromConfigMap(cm *corev1.ConfigMap) ([]ListEntry, error) {
	if cm == nil {
		return nil, nil
	}
	var errs []error
	for k := range cm.Data {
		if k != ImageListKey {
			errs = append(errs, fmt.Errorf("key %q is not read (the list is under %q)", k, ImageListKey))
		}
	}
	for k := range cm.BinaryData {
		errs = append(errs, fmt.Errorf("binary key %q is not read (the list is under %q)", k, ImageListKey))
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	entries, err := ParseImageList(cm.Data[ImageListKey])
	if err != nil {
		errs = append(errs, err)
	}
	return entries, errors.Join(errs...)
}
