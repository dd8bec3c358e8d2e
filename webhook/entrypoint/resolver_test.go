package entrypoint

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sandbox.io/injector/internal/testregistry"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sandbox.io/injector/internal/keychain"
)

// push writes an image with the given command to repo:v1 and returns its
// reference and digest.
func push(t *testing.T, reg *testregistry.Registry, repo string, entrypoint, cmd []string) (string, string) {
	t.Helper()
	img := imageWith(t, "amd64", entrypoint, cmd)
	ref := reg.Push(t, repo+":v1", img)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref, d.String()
}

func imageWith(t *testing.T, arch string, entrypoint, cmd []string) v1.Image {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Entrypoint, cf.Config.Cmd = entrypoint, cmd
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}

func TestResolveTagThenCache(t *testing.T) {
	t.Parallel()
	reg := testregistry.New(t)
	ref, digest := push(t, reg, "app", []string{"/app"}, []string{"--serve"})
	r := NewResolver(Config{AllowPrivate: true})

	want := Command{Entrypoint: []string{"/app"}, Cmd: []string{"--serve"}}
	got, err := r.Resolve(t.Context(), ref, amd64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("command (-want +got):\n%s", diff)
	}

	// Within the tag TTL, a second lookup asks nothing.
	before := reg.Requests()
	if _, err := r.Resolve(t.Context(), ref, amd64, nil); err != nil {
		t.Fatal(err)
	}
	if n := reg.Requests() - before; n != 0 {
		t.Errorf("cached tag lookup made %d requests, want 0", n)
	}
	// A digest reference is served from the digest cache with no request.
	byDigest := strings.TrimSuffix(ref, ":v1") + "@" + digest
	got, err = r.Resolve(t.Context(), byDigest, amd64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := reg.Requests() - before; n != 0 {
		t.Errorf("digest lookup of a cached image made %d requests, want 0", n)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("command by digest (-want +got):\n%s", diff)
	}
}

func TestResolveMovedTag(t *testing.T) {
	t.Parallel()
	reg := testregistry.New(t)
	ref, _ := push(t, reg, "app", []string{"/old"}, nil)
	r := NewResolver(Config{AllowPrivate: true, TagTTL: time.Nanosecond})
	if _, err := r.Resolve(t.Context(), ref, amd64, nil); err != nil {
		t.Fatal(err)
	}
	push(t, reg, "app", []string{"/new"}, nil)
	got, err := r.Resolve(t.Context(), ref, amd64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/new"}, got.Entrypoint); diff != "" {
		t.Errorf("after the tag moved (-want +got):\n%s", diff)
	}
}

func TestResolvePlatformFromIndex(t *testing.T) {
	t.Parallel()
	reg := testregistry.New(t)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: imageWith(t, "amd64", []string{"/x86"}, nil), Descriptor: v1.Descriptor{Platform: &amd64}},
		mutate.IndexAddendum{Add: imageWith(t, "arm64", []string{"/arm"}, nil), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	ref := reg.Host + "/multi:v1"
	tag, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	r := NewResolver(Config{AllowPrivate: true})
	for arch, want := range map[string]string{"amd64": "/x86", "arm64": "/arm"} {
		got, err := r.Resolve(t.Context(), ref, v1.Platform{OS: "linux", Architecture: arch}, nil)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if diff := cmp.Diff([]string{want}, got.Entrypoint); diff != "" {
			t.Errorf("%s (-want +got):\n%s", arch, diff)
		}
	}
}

func TestResolveWithPullSecret(t *testing.T) {
	t.Parallel()
	reg := testregistry.New(t, testregistry.WithBasicAuth("robot", "s3cret"))
	ref, _ := push(t, reg, "private/app", []string{"/private"}, nil)
	r := NewResolver(Config{AllowPrivate: true})

	if _, err := r.Resolve(t.Context(), ref, amd64, nil); err == nil {
		t.Fatal("anonymous lookup of a private image succeeded")
	}
	kc, err := keychain.FromSecrets([]*corev1.Secret{dockerConfigSecret(t, reg.Host, "robot", "s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Resolve(t.Context(), ref, amd64, kc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/private"}, got.Entrypoint); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// What one set of credentials fetched is not served to anonymous callers.
	if _, err := r.Resolve(t.Context(), ref, amd64, nil); err == nil {
		t.Error("an anonymous lookup was served from the cache of an authenticated one")
	}
}

func TestResolveFailures(t *testing.T) {
	t.Parallel()
	reg := testregistry.New(t)
	push(t, reg, "app", []string{"/app"}, nil)

	t.Run("registry keeps failing", func(t *testing.T) {
		t.Parallel()
		reg := testregistry.New(t)
		ref, _ := push(t, reg, "app", []string{"/app"}, nil)
		reg.FailNext(1000)
		_, err := NewResolver(Config{AllowPrivate: true}).Resolve(t.Context(), ref, amd64, nil)
		if err == nil || !strings.Contains(err.Error(), "500") {
			t.Errorf("err = %v, want one that reports the 500", err)
		}
	})
	t.Run("one failure is retried", func(t *testing.T) {
		t.Parallel()
		reg := testregistry.New(t)
		ref, _ := push(t, reg, "app", []string{"/app"}, nil)
		reg.FailNext(1)
		if _, err := NewResolver(Config{AllowPrivate: true}).Resolve(t.Context(), ref, amd64, nil); err != nil {
			t.Errorf("a single 500 was not retried: %v", err)
		}
	})
	t.Run("missing tag", func(t *testing.T) {
		t.Parallel()
		_, err := NewResolver(Config{AllowPrivate: true}).Resolve(t.Context(), reg.Host+"/app:nope", amd64, nil)
		if err == nil || !strings.Contains(err.Error(), "app:nope") {
			t.Errorf("err = %v, want one naming the reference", err)
		}
	})
	t.Run("bad reference", func(t *testing.T) {
		t.Parallel()
		_, err := NewResolver(Config{AllowPrivate: true}).Resolve(t.Context(), "UPPER/Case::", amd64, nil)
		if err == nil || !strings.Contains(err.Error(), "parsing image reference") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		// A server that accepts and never answers: the deadline must end it.
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		t.Cleanup(hang.Close)
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		_, err := NewResolver(Config{AllowPrivate: true}).Resolve(ctx, strings.TrimPrefix(hang.URL, "http://")+"/app:v1", amd64, nil)
		if err == nil || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "deadline") {
			t.Errorf("err = %v, want a deadline error", err)
		}
	})
}

func dockerConfigSecret(t *testing.T, host, user, pass string) *corev1.Secret {
	t.Helper()
	cfg := map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))},
	}}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: "default"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: raw},
	}
}
