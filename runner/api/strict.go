package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// ErrStrictJSON is wrapped by DecodeStrict for every body it refuses
// because of its form (not its JSON syntax): a field name in another case,
// a duplicate key, an unknown field or data after the object.
var ErrStrictJSON = errors.New("not strict JSON")

// DecodeStrict reads exactly one JSON value from r into v (a pointer to a
// struct) and refuses, naming the key at fault, what encoding/json alone
// would accept silently:
//   - a field name that matches a field only case-insensitively
//     ({"ARGV": ...} for "argv"), since encoding/json would fill the field
//     (it is an unknown field here);
//   - a key given twice in one object (at any depth, map keys too), since
//     encoding/json would keep the last one, so that two parsers of one body
//     could disagree on what it asks;
//   - a key that names no field;
//   - anything but white space after the value.
//
// Every runner request body goes through it.
func DecodeStrict(r io.Reader, v any) error {
	return decodeStrict(r, v, "body")
}

// decodeStrict is DecodeStrict naming the value root in its messages.
func decodeStrict(r io.Reader, v any, root string) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	err := checkValue(dec, reflect.TypeOf(v), root, 0)
	if err == nil {
		if _, err = dec.Token(); errors.Is(err, io.EOF) {
			// The form is checked; encoding/json now only fills v, and
			// refuses type mismatches with its own clear errors.
			return json.NewDecoder(&buf).Decode(v)
		}
		err = fmt.Errorf("%w: trailing data after the JSON value", ErrStrictJSON)
	}
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: the %s is empty", ErrStrictJSON, root)
	}
	return err
}

// maxDepth bounds the nesting of a request body: the request types nest
// two levels; the bound keeps the recursive check's stack small.
const maxDepth = 32

// checkValue reads one value from dec and checks its objects against t
// (nil: anything goes, such as the values of a map of strings).
func checkValue(dec *json.Decoder, t reflect.Type, where string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: %s nests deeper than %d levels", ErrStrictJSON, where, maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	delim, _ := tok.(json.Delim)
	if delim != '{' && delim != '[' {
		return nil
	}
	var elem reflect.Type
	isStruct := t != nil && t.Kind() == reflect.Struct
	if t != nil && (t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	seen := map[string]bool{}
	for i := 0; dec.More(); i++ {
		sub := where
		if delim == '{' {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			if seen[key] {
				return fmt.Errorf("%w: key %q appears twice in %s", ErrStrictJSON, key, where)
			}
			seen[key] = true
			if isStruct {
				if elem = fieldType(t, key); elem == nil {
					return fmt.Errorf("%w: unknown field %q in %s (names are case sensitive)", ErrStrictJSON, key, where)
				}
			}
			sub += "." + key
		}
		if err := checkValue(dec, elem, sub, depth+1); err != nil {
			return err
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// fieldType returns the type of the struct field that encoding/json names
// key (exactly, in its case), nil when there is none. Embedded structs are
// not looked into: no request type has one, and a key of one would be
// refused as unknown, never accepted by mistake.
func fieldType(t reflect.Type, key string) reflect.Type {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if name == key && name != "-" && f.IsExported() {
			return f.Type
		}
	}
	return nil
}
