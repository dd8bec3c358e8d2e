package prepuller

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Image is one desired image.
type Image struct {
	// Ref is the image reference, by tag or by digest, as a pod names it.
	Ref string
	// Auth holds the registry credentials for Ref; nil pulls anonymously.
	Auth *AuthConfig
}

// AuthConfig is the registry credential passed to the runtime with a pull
// (the fields of the CRI AuthConfig the kubelet fills from pull secrets).
type AuthConfig struct {
	Username      string
	Password      string
	IdentityToken string
	RegistryToken string
}

func (a *AuthConfig) cri() *runtimeapi.AuthConfig {
	if a == nil {
		return nil
	}
	return &runtimeapi.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		IdentityToken: a.IdentityToken,
		RegistryToken: a.RegistryToken,
	}
}

// normalized is a parsed reference in the form the runtime lists images:
// registry/repository:tag or registry/repository@digest, Docker Hub as
// docker.io.
type normalized struct {
	name     string
	byDigest bool
}

// normalize parses ref the way containerd names images, so that a desired
// reference can be found among the runtime's RepoTags and RepoDigests.
func normalize(ref string) (normalized, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return normalized{}, fmt.Errorf("parsing reference %q: %w", ref, err)
	}
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	repo := reg + "/" + r.Context().RepositoryStr()
	if d, ok := r.(name.Digest); ok {
		return normalized{name: repo + "@" + d.DigestStr(), byDigest: true}, nil
	}
	return normalized{name: repo + ":" + r.Identifier()}, nil
}

// presentSet indexes the runtime's images by every name they carry.
type presentSet map[string]*runtimeapi.Image

func newPresentSet(images []*runtimeapi.Image) presentSet {
	s := presentSet{}
	for _, img := range images {
		for _, n := range img.GetRepoTags() {
			s[n] = img
		}
		for _, n := range img.GetRepoDigests() {
			s[n] = img
		}
	}
	return s
}
