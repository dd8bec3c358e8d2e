// Package testregistry serves a real OCI registry (go-containerregistry's
// in-memory implementation) on loopback for tests, with what tests of
// pulls and lookups need around it: optional basic auth, injected 5xx
// answers, and a request counter.
package testregistry

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is a running test registry. It stops when the test ends.
type Registry struct {
	// Host is host:port, for image references like Host+"/app:v1".
	Host string
	// User and Password are the basic-auth credentials it demands; empty
	// when it is anonymous.
	User, Password string

	requests atomic.Int64
	failNext atomic.Int64
}

// Option configures New.
type Option func(*Registry)

// WithBasicAuth makes the registry answer 401 to requests without these
// credentials.
func WithBasicAuth(user, password string) Option {
	return func(r *Registry) { r.User, r.Password = user, password }
}

// New starts a registry on 127.0.0.1.
func New(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	r := &Registry{}
	for _, o := range opts {
		o(r)
	}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		if r.failNext.Load() > 0 {
			r.failNext.Add(-1)
			http.Error(w, "backend down", http.StatusInternalServerError)
			return
		}
		if r.User != "" {
			if u, p, ok := req.BasicAuth(); !ok || u != r.User || p != r.Password {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.Host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// Requests returns how many requests it has received.
func (r *Registry) Requests() int64 { return r.requests.Load() }

// FailNext makes the next n requests answer 500.
func (r *Registry) FailNext(n int64) { r.failNext.Store(n) }

// Push writes img as Host/repoTag (like "app:v1") with the registry's own
// credentials, and returns the full reference.
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image) string {
	t.Helper()
	ref := r.Host + "/" + repoTag
	tag, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: r.User, Password: r.Password})); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref
}

// RandomImage is a small image of random layers (layers of size bytes
// each) for linux on this machine's architecture, so that a container
// runtime here accepts it; every call gives a new digest.
func RandomImage(t testing.TB, size int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatalf("making a random image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("reading a random image's config: %v", err)
	}
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatalf("setting a random image's platform: %v", err)
	}
	return img
}
