package agent

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestParseImageList(t *testing.T) {
	t.Parallel()
	nn := func(ns, n string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: n} }
	tests := []struct {
		name    string
		text    string
		want    []ListEntry
		wantErr []string // substrings, one per malformed entry, in order
	}{
		{name: "empty", text: ""},
		{name: "comments and blank lines", text: "# the list\n\n   \n\t# indented comment\n"},
		{
			name: "references and secrets",
			text: "busybox\nregistry.local:5000/team/app:v1   # trailing comment\n" +
				"registry.local:5000/private/app@sha256:" + strings.Repeat("a", 64) + " team-a/pull\tteam-b/pull team-a/pull\n",
			want: []ListEntry{
				{Ref: "busybox"},
				{Ref: "registry.local:5000/team/app:v1"},
				{Ref: "registry.local:5000/private/app@sha256:" + strings.Repeat("a", 64), PullSecrets: []types.NamespacedName{nn("team-a", "pull"), nn("team-b", "pull")}},
			},
		},
		{name: "windows line ends", text: "busybox:1\r\napp:2\r\n", want: []ListEntry{{Ref: "busybox:1"}, {Ref: "app:2"}}},
		{
			name:    "a hash inside a word is not a comment",
			text:    "app:v1 ns/name#x\n",
			wantErr: []string{`line 1 "app:v1 ns/name#x": pull secret "ns/name#x": name`},
		},
		{
			name: "malformed entries are refused, valid ones kept",
			text: "good:v1\nUPPER/case:v1\nbad:tag:x\nok:v2 no-slash\nok:v3 Bad_NS/x\nok:v4 ns/\nlast:v1\n",
			want: []ListEntry{{Ref: "good:v1"}, {Ref: "last:v1"}},
			wantErr: []string{
				`line 2 "UPPER/case:v1": image reference`,
				`line 3 "bad:tag:x": image reference`,
				`line 4 "ok:v2 no-slash": pull secret "no-slash" is not written namespace/name`,
				`line 5 "ok:v3 Bad_NS/x": pull secret "Bad_NS/x": namespace "Bad_NS"`,
				`line 6 "ok:v4 ns/": pull secret "ns/": name ""`,
			},
		},
		{
			name:    "an overlong line",
			text:    "app:v1 " + strings.Repeat("n/s ", 2000),
			wantErr: []string{"over the limit of 4096"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseImageList(tc.text)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			var errs []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var le *ImageListError
					if !errors.As(e, &le) {
						t.Errorf("error %v is not an *ImageListError", e)
					}
					errs = append(errs, e.Error())
				}
			}
			if len(errs) != len(tc.wantErr) {
				t.Fatalf("errors %q, want %d like %q", errs, len(tc.wantErr), tc.wantErr)
			}
			for i := range errs {
				if !strings.Contains(errs[i], tc.wantErr[i]) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], tc.wantErr[i])
				}
			}
		})
	}
}

func TestImageListFromConfigMap(t *testing.T) {
	t.Parallel()
	if got, err := ImageListFromConfigMap(nil); got != nil || err != nil {
		t.Errorf("no ConfigMap: %v, %v; want an empty list", got, err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "prepull", Namespace: "sbx"},
		Data:       map[string]string{"images": "a:v1\nb:v1 bad\n", "image": "c:v1"},
	}
	got, err := ImageListFromConfigMap(cm)
	if diff := cmp.Diff([]ListEntry{{Ref: "a:v1"}}, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if err == nil || !strings.Contains(err.Error(), `key "image" is not read`) || !strings.Contains(err.Error(), `line 2 "b:v1 bad"`) {
		t.Errorf("err = %v, want the misspelled key and the bad line named", err)
	}
	if n := countErrors(err); n != 2 {
		t.Errorf("countErrors = %d, want 2", n)
	}
}

// FuzzParseImageList hunts panics in the parser and checks that what it
// accepts round-trips: formatting the entries and parsing them again gives
// the same entries with no error. Run: go test -fuzz=FuzzParseImageList ./agent
func FuzzParseImageList(f *testing.F) {
	for _, s := range []string{
		"", "busybox\n", "a:v1 ns/s # c\n#x\n", "r.io:5000/a/b@sha256:" + strings.Repeat("0", 64) + " a/b c/d\n",
		"bad:tag:x\n", "a ns/\n", "\r\n\t#", "a:v1 ns/name#x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		entries, _ := ParseImageList(text)
		again, err := ParseImageList(FormatImageList(entries))
		if err != nil {
			t.Fatalf("formatted accepted entries %+v do not parse again: %v", entries, err)
		}
		if diff := cmp.Diff(entries, again); diff != "" {
			t.Fatalf("round trip changed the entries (-first +again):\n%s", diff)
		}
	})
}
