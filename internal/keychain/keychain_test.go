package keychain

import (
	"encoding/json"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestKeychainMatching(t *testing.T) {
	t.Parallel()
	auths := map[string]dockerAuth{
		"registry.test":                   {Username: "host"},
		"*.mirror.test":                   {Username: "glob"},
		"registry.test/team":              {Username: "team"},
		"https://registry.test/team/deep": {Username: "deep"},
		"ported.test:5000":                {Username: "ported"},
		"https://index.docker.io/v1/":     {Username: "hub"},
	}
	raw, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := FromSecrets([]*corev1.Secret{{
		ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: raw},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		repo string
		want string // username, "" for anonymous
	}{
		{"registry.test/other/app", "host"},
		{"registry.test/team/app", "team"},
		{"registry.test/team/deep/app", "deep"},
		{"registry.test/teamster/app", "host"},
		{"eu.mirror.test/app", "glob"},
		{"a.eu.mirror.test/app", ""},
		{"ported.test:5000/app", "ported"},
		{"ported.test/app", ""},
		{"elsewhere.test/app", ""},
		{"library/busybox", "hub"},
		{"docker.io/team/app", "hub"},
	}
	for _, tc := range tests {
		t.Run(tc.repo, func(t *testing.T) {
			t.Parallel()
			repo, err := name.NewRepository(tc.repo)
			if err != nil {
				t.Fatal(err)
			}
			auth, err := kc.Resolve(repo)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := authn.Authorization(t.Context(), auth)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Username != tc.want {
				t.Errorf("user = %q, want %q", cfg.Username, tc.want)
			}
		})
	}
}

func TestKeychainRejectsMalformedSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret *corev1.Secret
	}{
		{"not json", &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte("{")}}},
		{"auth not base64", &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"r.test":{"auth":"%%%"}}}`)}}},
		{"legacy not json", &corev1.Secret{Type: corev1.SecretTypeDockercfg,
			Data: map[string][]byte{corev1.DockerConfigKey: []byte("[")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.secret.Name, tc.secret.Namespace = "bad", "ns"
			if _, err := FromSecrets([]*corev1.Secret{tc.secret}); err == nil {
				t.Error("malformed secret accepted")
			}
		})
	}
	// Secrets of other types are ignored, as the kubelet ignores them.
	if _, err := FromSecrets([]*corev1.Secret{{Type: corev1.SecretTypeOpaque}}); err != nil {
		t.Errorf("opaque secret: %v", err)
	}
}
