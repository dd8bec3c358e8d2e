package ociimage

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ParseReference parses an image reference such as
// "10.250.0.1:5000/sandbox-runner:v1". With insecure, the registry may be
// reached over plain HTTP (ggcr already does so for loopback hosts).
func ParseReference(ref string, insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("parsing reference %q: %w", ref, err)
	}
	return r, nil
}

// Push uploads img to ref with the credentials of the default keychain
// (the Docker config file, $DOCKER_CONFIG; anonymous when it has none for the
// registry), so that a release can push where the local registry needs no
// login. transport may be nil for http.DefaultTransport.
func Push(ctx context.Context, img v1.Image, ref name.Reference, transport http.RoundTripper) (v1.Hash, error) {
	if transport == nil {
		transport = http.DefaultTransport
	}
	err := remote.Write(ref, img,
		remote.WithContext(ctx),
		remote.WithTransport(transport),
		remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("computing digest of %s: %w", ref, err)
	}
	return d, nil
}

// PushIndex uploads idx and every image it holds to ref, with the
// credentials of the default keychain (see Push).
func PushIndex(ctx context.Context, idx v1.ImageIndex, ref name.Reference, transport http.RoundTripper) (v1.Hash, error) {
	if transport == nil {
		transport = http.DefaultTransport
	}
	err := remote.WriteIndex(ref, idx,
		remote.WithContext(ctx),
		remote.WithTransport(transport),
		remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing index %s: %w", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("computing digest of index %s: %w", ref, err)
	}
	return d, nil
}

// WriteTarball writes img as a tarball tagged ref (the format `docker load`
// and `ctr images import` read) to the file at path.
func WriteTarball(path string, img v1.Image, ref name.Reference) error {
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		return fmt.Errorf("writing tarball %s: %w", path, err)
	}
	return nil
}
