package entrypoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Command is an image's ENTRYPOINT and CMD.
type Command struct {
	Entrypoint []string
	Cmd        []string
}

// Config configures a Resolver. Every field is optional.
type Config struct {
	// Insecure lists registries (host[:port]) reached over plain HTTP.
	// Loopback registries always are. These registries may also be on
	// private and loopback addresses. Default none.
	Insecure []string
	// AllowPrivate lets every registry be on a private or loopback
	// address; by default only those listed in Insecure may. Link-local and
	// cloud metadata addresses are always refused (see AddressPolicy).
	AllowPrivate bool
	// TagTTL is how long a tag's digest is trusted before it is asked
	// again. Default 30s.
	TagTTL time.Duration
	// MaxEntries bounds each cache. Default 1024.
	MaxEntries int
	// Transport is the HTTP transport. Default: AddressPolicy.Transport
	// with the policy of Insecure and AllowPrivate. A transport set here
	// must do its own address checks.
	Transport http.RoundTripper
}

// Resolver reads image commands, with caches. It is safe for concurrent use.
type Resolver struct {
	cfg Config

	mu       sync.Mutex
	byDigest map[string]Command   // digest + platform + credentials
	tags     map[string]tagDigest // reference + credentials
}

type tagDigest struct {
	digest  string
	expires time.Time
}

// NewResolver returns a Resolver with cfg's defaults applied.
func NewResolver(cfg Config) *Resolver {
	if cfg.TagTTL == 0 {
		cfg.TagTTL = 30 * time.Second
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = 1024
	}
	if cfg.Transport == nil {
		cfg.Transport = AddressPolicy{AllowPrivate: cfg.AllowPrivate, AllowedHosts: cfg.Insecure}.Transport()
	}
	return &Resolver{cfg: cfg, byDigest: map[string]Command{}, tags: map[string]tagDigest{}}
}

// Resolve returns the ENTRYPOINT and CMD of image for platform, reading the
// registry with the credentials of kc (nil: anonymous). ctx bounds the
// whole lookup.
func (r *Resolver) Resolve(ctx context.Context, image string, platform v1.Platform, kc authn.Keychain) (Command, error) {
	var opts []name.Option
	if reg, err := name.ParseReference(image); err == nil && slices.Contains(r.cfg.Insecure, reg.Context().RegistryStr()) {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(image, opts...)
	if err != nil {
		return Command{}, fmt.Errorf("parsing image reference %q: %w", image, err)
	}
	if kc == nil {
		kc = authn.NewMultiKeychain() // anonymous
	}
	auth, err := kc.Resolve(ref.Context())
	if err != nil {
		return Command{}, fmt.Errorf("resolving credentials for %s: %w", ref.Context(), err)
	}
	authKey, err := credentialKey(ctx, auth)
	if err != nil {
		return Command{}, err
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(auth),
		remote.WithTransport(r.cfg.Transport),
		remote.WithPlatform(platform),
		// The caller's deadline is short: one quick retry at most.
		remote.WithRetryBackoff(remote.Backoff{Duration: 50 * time.Millisecond, Factor: 2, Steps: 2}),
	}

	digest, err := r.digest(ref, authKey, ropts)
	if err != nil {
		return Command{}, err
	}
	key := digest + "|" + platform.String() + "|" + authKey
	r.mu.Lock()
	cmd, ok := r.byDigest[key]
	r.mu.Unlock()
	if ok {
		return cmd, nil
	}

	img, err := remote.Image(ref.Context().Digest(digest), ropts...)
	if err != nil {
		return Command{}, fmt.Errorf("reading image %s: %w", image, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return Command{}, fmt.Errorf("reading config of image %s: %w", image, err)
	}
	cmd = Command{Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd}
	r.mu.Lock()
	r.evictIfFull(len(r.byDigest), func() { clear(r.byDigest) })
	r.byDigest[key] = cmd
	r.mu.Unlock()
	return cmd, nil
}

// digest returns the digest a reference points at now: its own digest, or
// the tag's (cached for TagTTL).
func (r *Resolver) digest(ref name.Reference, authKey string, ropts []remote.Option) (string, error) {
	if d, ok := ref.(name.Digest); ok {
		return d.DigestStr(), nil
	}
	key := ref.Name() + "|" + authKey
	now := time.Now()
	r.mu.Lock()
	td, ok := r.tags[key]
	r.mu.Unlock()
	if ok && now.Before(td.expires) {
		return td.digest, nil
	}
	desc, err := remote.Head(ref, ropts...)
	if err != nil {
		return "", fmt.Errorf("resolving tag %s: %w", ref.Name(), err)
	}
	r.mu.Lock()
	r.evictIfFull(len(r.tags), func() { clear(r.tags) })
	r.tags[key] = tagDigest{digest: desc.Digest.String(), expires: now.Add(r.cfg.TagTTL)}
	r.mu.Unlock()
	return desc.Digest.String(), nil
}

// evictIfFull drops a whole cache when it reaches its bound: simple, and a
// cold cache only costs a few registry requests.
func (r *Resolver) evictIfFull(n int, drop func()) {
	if n >= r.cfg.MaxEntries {
		drop()
	}
}

// credentialKey identifies credentials in cache keys without keeping them,
// so that a pod cannot read what another pod's credentials fetched.
func credentialKey(ctx context.Context, auth authn.Authenticator) (string, error) {
	if auth == authn.Anonymous {
		return "anonymous", nil
	}
	cfg, err := authn.Authorization(ctx, auth)
	if err != nil {
		return "", fmt.Errorf("reading credentials: %w", err)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encoding credentials: %w", err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8]), nil
}

// ErrNoCommand is returned by callers that need a command when an image has
// neither ENTRYPOINT nor CMD.
var ErrNoCommand = errors.New("image has neither ENTRYPOINT nor CMD")
