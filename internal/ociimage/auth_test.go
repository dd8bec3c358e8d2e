package ociimage_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"sandbox.io/injector/internal/ociimage"
	"sandbox.io/injector/internal/testregistry"
)

// TestPushUsesDockerConfigCredentials pushes to a registry that demands basic
// auth: without credentials the push fails, with them in $DOCKER_CONFIG it
// succeeds.
func TestPushUsesDockerConfigCredentials(t *testing.T) {
	// Not parallel: it sets DOCKER_CONFIG.
	const user, pass = "releaser", "s3cret"
	host := testregistry.New(t, testregistry.WithBasicAuth(user, pass)).Host

	img, err := ociimage.Build(ociimage.Spec{Files: []ociimage.File{{Path: "/x", Data: []byte("x")}}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ociimage.ParseReference(host+"/release:v1", true)
	if err != nil {
		t.Fatal(err)
	}

	t.Setenv("DOCKER_CONFIG", t.TempDir()) // empty: anonymous
	if _, err := ociimage.Push(t.Context(), img, ref, nil); err == nil {
		t.Fatal("anonymous push to a registry that needs a login succeeded")
	}

	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	if _, err := ociimage.Push(t.Context(), img, ref, nil); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}
}
