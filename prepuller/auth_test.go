package prepuller

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAuthFor(t *testing.T) {
	t.Parallel()
	raw, err := json.Marshal(map[string]any{"auths": map[string]any{
		"127.0.0.1:5000":      map[string]string{"username": "host", "password": "hostpw"},
		"127.0.0.1:5000/team": map[string]string{"auth": "dGVhbTp0ZWFtcHc="}, // team:teampw
		"token.test":          map[string]string{"identitytoken": "tok"},
		"docker.io":           map[string]string{"username": "hub", "password": "hubpw"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	secrets := []*corev1.Secret{{
		ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: "ns"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: raw},
	}, {
		ObjectMeta: metav1.ObjectMeta{Name: "opaque", Namespace: "ns"},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte("not json")},
	}}
	tests := []struct {
		name    string
		ref     string
		secrets []*corev1.Secret
		want    *AuthConfig
		wantErr bool
	}{
		{name: "host entry", ref: "127.0.0.1:5000/app:v1", secrets: secrets, want: &AuthConfig{Username: "host", Password: "hostpw"}},
		{name: "longest path prefix wins, auth field decoded", ref: "127.0.0.1:5000/team/app", secrets: secrets, want: &AuthConfig{Username: "team", Password: "teampw"}},
		{name: "identity token", ref: "token.test/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", secrets: secrets, want: &AuthConfig{IdentityToken: "tok"}},
		{name: "docker.io entry for a short Docker Hub name", ref: "busybox", secrets: secrets, want: &AuthConfig{Username: "hub", Password: "hubpw"}},
		{name: "docker.io entry for index.docker.io", ref: "index.docker.io/team/app", secrets: secrets, want: &AuthConfig{Username: "hub", Password: "hubpw"}},
		{name: "other port is anonymous", ref: "127.0.0.1:5001/app", secrets: secrets, want: nil},
		{name: "no secrets is anonymous", ref: "127.0.0.1:5000/app", want: nil},
		{name: "bad reference", ref: "Bad Ref", secrets: secrets, wantErr: true},
		{name: "malformed secret", ref: "127.0.0.1:5000/app", secrets: []*corev1.Secret{{
			ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: "ns"},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte("{")},
		}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := AuthFor(tc.ref, tc.secrets)
			if (err != nil) != tc.wantErr {
				t.Fatalf("AuthFor(%q) error = %v, want error %v", tc.ref, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("AuthFor(%q) (-want +got):\n%s", tc.ref, diff)
			}
		})
	}
}
