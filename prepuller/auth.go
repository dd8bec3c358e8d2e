package prepuller

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"

	"sandbox.io/injector/internal/keychain"
)

// AuthFor returns the credentials for ref from pull secrets
// (kubernetes.io/dockerconfigjson or dockercfg; other types are ignored),
// matched to the registry and repository as the kubelet matches them: the
// most specific entry wins. It returns nil when no entry matches (an
// anonymous pull).
func AuthFor(ref string, secrets []*corev1.Secret) (*AuthConfig, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("parsing reference %q: %w", ref, err)
	}
	kc, err := keychain.FromSecrets(secrets)
	if err != nil {
		return nil, fmt.Errorf("reading pull secrets for %s: %w", ref, err)
	}
	// The keychain itself knows Docker Hub's names (docker.io,
	// index.docker.io and the legacy https://index.docker.io/v1/).
	a, err := kc.Resolve(r.Context())
	if err != nil {
		return nil, fmt.Errorf("resolving credentials for %s: %w", ref, err)
	}
	if a == authn.Anonymous {
		return nil, nil
	}
	cfg, err := a.Authorization()
	if err != nil {
		return nil, fmt.Errorf("reading credentials for %s: %w", ref, err)
	}
	out := &AuthConfig{
		Username:      cfg.Username,
		Password:      cfg.Password,
		IdentityToken: cfg.IdentityToken,
		RegistryToken: cfg.RegistryToken,
	}
	if *out == (AuthConfig{}) {
		return nil, nil
	}
	return out, nil
}
