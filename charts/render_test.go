package charts

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []string // kind/name
		wantErr string
	}{
		{name: "empty", in: ""},
		{name: "only separators and comments", in: "---\n# Source: x\n---\n"},
		{
			name: "several documents",
			in:   "---\n# Source: a.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: b\n",
			want: []string{"Service/a", "Deployment/b"},
		},
		{name: "no kind", in: "apiVersion: v1\nmetadata:\n  name: a\n", wantErr: "missing apiVersion or kind"},
		{name: "not yaml", in: "kind: [\n", wantErr: "decoding document 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objs, err := Decode(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetKind()+"/"+o.GetName())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFind(t *testing.T) {
	t.Parallel()
	objs, err := Decode(strings.NewReader("kind: A\napiVersion: v1\nmetadata: {name: a1}\n---\nkind: B\napiVersion: v1\nmetadata: {name: b}\n---\nkind: A\napiVersion: v1\nmetadata: {name: a2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := Find(objs, "A"); len(got) != 2 || got[0].GetName() != "a1" || got[1].GetName() != "a2" {
		t.Errorf("Find(A) = %v", got)
	}
	if got := Find(objs, "C"); len(got) != 0 {
		t.Errorf("Find(C) = %v, want none", got)
	}
	if b, err := FindOne(objs, "B"); err != nil || b.GetName() != "b" {
		t.Errorf("FindOne(B) = %v, %v", b, err)
	}
	for _, kind := range []string{"A", "C"} {
		if _, err := FindOne(objs, kind); err == nil {
			t.Errorf("FindOne(%s) succeeded, want an error", kind)
		}
	}
}

func TestPointAt(t *testing.T) {
	t.Parallel()
	in := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "m", ResourceVersion: "7", Annotations: map[string]string{"cert-manager.io/inject-ca-from": "ns/c", "keep": "me"}},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:           "a.sandbox.io",
			ClientConfig:   admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "ns", Name: "svc", Path: ptr.To("/mutate-v1-pod")}},
			TimeoutSeconds: ptr.To[int32](5),
		}},
	}
	out := PointAt(in, "https://127.0.0.1:9443/", []byte("PEM"))
	want := admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:9443/mutate-v1-pod"), CABundle: []byte("PEM")}
	if diff := cmp.Diff(want, out.Webhooks[0].ClientConfig); diff != "" {
		t.Errorf("clientConfig (-want +got):\n%s", diff)
	}
	if out.ResourceVersion != "" || out.Annotations["keep"] != "me" || out.Annotations["cert-manager.io/inject-ca-from"] != "" {
		t.Errorf("metadata %+v: want no resourceVersion, no CA injection annotation, other annotations kept", out.ObjectMeta)
	}
	if in.Webhooks[0].ClientConfig.Service == nil || in.Annotations["cert-manager.io/inject-ca-from"] == "" {
		t.Errorf("PointAt changed its input")
	}
	if *out.Webhooks[0].TimeoutSeconds != 5 {
		t.Errorf("other fields changed")
	}
}

func TestHelmPathMissing(t *testing.T) {
	t.Setenv("HELM", t.TempDir()+"/no-helm")
	if _, err := HelmPath(); !errors.Is(err, ErrNoHelm) {
		t.Errorf("HelmPath() error %v, want ErrNoHelm", err)
	}
}

func TestRenderErrorNamesHelmMessage(t *testing.T) {
	t.Parallel()
	helm := requireHelm(t)
	_, err := RenderRelease(t.Context(), helm, Release{Values: map[string]any{"serviceAccount": map[string]any{"create": false}}})
	if err == nil || !strings.Contains(err.Error(), "serviceAccount.name is required") {
		t.Errorf("error %v, want helm's template error", err)
	}
}
