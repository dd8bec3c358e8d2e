package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
)

// ErrStrictJSON is wrapped by DecodeStrict for every body it refuses
// because of its form (not its JSON syntax): a field name in another case,
// a duplicate key, an unknown field or data after the object.
var ErrStrictJSON = errors.New("request body is not strict JSON")

// DecodeStrict reads exactly one JSON value from r into v (a pointer to a
// struct) and refuses, naming the key at fault, what encoding/json alone
// would accept silently:
//   - a field name that matches a field only case-insensitively
//     ({"ARGV": ...} for "argv"), since encoding/json would fill the field;
//   - a key given twice in one object (at any depth, map keys too), since
//     encoding/json would keep the last one, so that two parsers of one body
//     could disagree on what it asks;
//   - a key that names no field;
//   - anything but white space after the value.
//
// Every runner request body goes through it.
func DecodeStrict(r io.Reader, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("decoding into %T: want a non-nil pointer", v)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := checkValue(dec, rv.Type().Elem(), "body", 0); err != nil {
		return err
	}
	if tok, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return fmt.Errorf("%w: trailing data after the JSON value: %w", ErrStrictJSON, err)
		}
		return fmt.Errorf("%w: trailing data after the JSON value (%v)", ErrStrictJSON, tok)
	}
	// The form is checked; encoding/json now only fills v, and refuses type
	// mismatches with its own clear errors.
	strict := json.NewDecoder(bytes.NewReader(raw))
	strict.DisallowUnknownFields()
	return strict.Decode(v)
}

// maxDepth bounds the nesting of a request body: the request types nest
// two levels; the bound keeps the recursive check's stack small.
const maxDepth = 32

// checkValue reads one value from dec and checks its objects against t.
func checkValue(dec *json.Decoder, t reflect.Type, where string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: %s nests deeper than %d levels", ErrStrictJSON, where, maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %s is empty", ErrStrictJSON, where)
		}
		return err
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch tok {
	case json.Delim('{'):
		return checkObject(dec, t, where, depth)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := checkValue(dec, elem, fmt.Sprintf("%s[%d]", where, i), depth+1); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return nil
}

func checkObject(dec *json.Decoder, t reflect.Type, where string, depth int) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	isStruct := t != nil && t.Kind() == reflect.Struct
	if isStruct {
		fields = jsonFields(t)
	} else if t != nil && t.Kind() == reflect.Map {
		elem = t.Elem()
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("%w: key %q appears twice in %s", ErrStrictJSON, key, where)
		}
		seen[key] = true
		ft := elem
		if isStruct {
			var ok bool
			if ft, ok = fields[key]; !ok {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return fmt.Errorf("%w: key %q in %s must be spelled %q (field names are case sensitive)", ErrStrictJSON, key, where, name)
					}
				}
				return fmt.Errorf("%w: unknown field %q in %s", ErrStrictJSON, key, where)
			}
		}
		if err := checkValue(dec, ft, where+"."+key, depth+1); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// jsonFields maps the JSON names of a struct's fields (as encoding/json
// names them, embedded structs flattened) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	fieldCache.Store(t, out)
	return out
}
