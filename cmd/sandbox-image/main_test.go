package main

import (
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func fakeBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(p, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunPushesEachKind(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	bin := fakeBinary(t)

	tests := []struct {
		kind       string
		entrypoint []string
		cmd        []string
		user       string
	}{
		{"runner", []string{"/sandbox-runner/sandbox-runner"}, nil, "65532:65532"},
		{"webhook", []string{"/sandbox-webhook"}, nil, "65532:65532"},
		{"agent", []string{"/sandbox-agent"}, nil, "65532:65532"},
		{"pause", []string{"/pause"}, nil, "65532:65532"},
		{"hello", []string{"/hello"}, helloCmd, "65532:65532"},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			ref := host + "/" + tc.kind + ":test"
			var out bytes.Buffer
			args := []string{"-kind", tc.kind, "-binary", bin, "-ca-certs", "", "-ref", ref, "-push", "-insecure"}
			if err := run(t.Context(), args, &out); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out.String(), "pushed "+ref+"@sha256:") {
				t.Errorf("output %q, want a pushed line", out.String())
			}
			r, err := name.ParseReference(ref, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			img, err := remote.Image(r, remote.WithContext(t.Context()))
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.entrypoint, cf.Config.Entrypoint); diff != "" {
				t.Errorf("entrypoint (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.cmd, cf.Config.Cmd); diff != "" {
				t.Errorf("cmd (-want +got):\n%s", diff)
			}
			if cf.Config.User != tc.user {
				t.Errorf("user %q, want %q", cf.Config.User, tc.user)
			}
		})
	}
}

func TestRunWritesTarballFromEnv(t *testing.T) {
	// Not parallel: it sets environment variables.
	bin := fakeBinary(t)
	out := filepath.Join(t.TempDir(), "img.tar")
	t.Setenv("SANDBOX_IMAGE_KIND", "hello")
	t.Setenv("SANDBOX_IMAGE_BINARY", bin)
	t.Setenv("SANDBOX_IMAGE_TARBALL", out)
	if err := run(t.Context(), []string{"-ref", "example.test/hello:v1"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(helloCmd, cf.Config.Cmd); diff != "" {
		t.Errorf("cmd (-want +got):\n%s", diff)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"nothing", nil, []string{"-kind", "-ref is required"}},
		{"unknown kind", []string{"-kind", "nginx", "-ref", "x/y:1"}, []string{`-kind "nginx"`}},
		{"no binary", []string{"-kind", "runner", "-ref", "x/y:1"}, []string{"-binary is required"}},
		{"bad reference", []string{"-kind", "busybox", "-ref", "UPPER/Case:::"}, []string{"parsing reference"}},
		{"missing binary", []string{"-kind", "runner", "-binary", "/nonexistent/bin", "-ref", "x/y:1"}, []string{"nonexistent"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := run(t.Context(), tc.args, &bytes.Buffer{})
			if err == nil {
				t.Fatal("run succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
