package webhook

import (
	"encoding/json"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
)

// TestEncodePatchIsJSONMarshal covers what the golden cases do not: values
// that need escaping, nil values, raw values alone and inside arrays.
func TestEncodePatchIsJSONMarshal(t *testing.T) {
	// Raw values are what json.Marshal wrote, as Config.Complete's are.
	raw, err := json.Marshal(corev1.Container{Name: "x", Image: "a<b>&c", Command: []string{"é\u2028"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ops := range [][]jsonpatch.Operation{
		nil,
		{},
		{{Operation: "remove", Path: "/spec/containers/0/args"}},
		{{Operation: "add", Path: "/metadata/annotations/a~1b"}},
		{{Operation: "replace", Path: "/x"}},
		{{Operation: "remove", Path: "/x", Value: "kept"}},
		{{Operation: "add", Path: "/p/\"quoted\"\\<&>/é\u2028\x01", Value: "v\"<&>\u2028é\x01\n"}},
		{{Operation: "add", Path: "/a", Value: json.RawMessage(raw)}},
		{{Operation: "add", Path: "/a", Value: json.RawMessage(nil)}},
		{{Operation: "add", Path: "/a", Value: []any{json.RawMessage(raw), corev1.VolumeMount{Name: "v", MountPath: "/m"}, "s", nil}}},
		{{Operation: "add", Path: "/a", Value: []any(nil)}},
		{{Operation: "add", Path: "/a", Value: []any{}}},
		{{Operation: "add", Path: "/a", Value: (*corev1.Probe)(nil)}},
		{{Operation: "add", Path: "/a", Value: map[string]string{"k<": "v&"}}, {Operation: "add", Path: "/b", Value: []string{"/x", "--"}}},
	} {
		want, err := json.Marshal(ops)
		if err != nil {
			t.Fatal(err)
		}
		got, err := EncodePatch(ops)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("EncodePatch(%v):\n got %s\nwant %s", ops, got, want)
		}
	}
}
