package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"sandbox.io/injector/internal/ociimage"
)

// runnerMaxSize is the design's limit for the stripped static runner, the
// same bar cmd/sandbox-runner's TestStaticAndSmall holds the host build to;
// here it holds for every published platform.
const runnerMaxSize = 6 << 20

// runnerTags and the -s -w below are the shipped runner's build (make/30-runner.mk).
const runnerTags = "nethttpomithttp2,purego"

// crossBuild builds the package pkg (relative to the repository root) for
// linux/arch the way `make images` does, once per test binary run.
var crossBuilds sync.Map // "pkg arch" -> *crossBuild

type crossBuild struct {
	once sync.Once
	path string
	err  error
}

func buildFor(t *testing.T, pkg, arch, tags string) string {
	t.Helper()
	v, _ := crossBuilds.LoadOrStore(pkg+" "+arch, &crossBuild{})
	b := v.(*crossBuild)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "sandbox-image-test-*")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-trimpath", "-tags", tags, "-ldflags", "-s -w", "-o", b.path, "./"+pkg)
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %s for linux/%s: %w\n%s", pkg, arch, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	crossBuilds.Range(func(_, v any) bool {
		if p := v.(*crossBuild).path; p != "" {
			_ = os.RemoveAll(filepath.Dir(p))
		}
		return true
	})
	os.Exit(code)
}

// fileFromImage returns the content of the regular file at path in img's
// layers.
func fileFromImage(t *testing.T, img v1.Image, path string) []byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if "/"+hdr.Name == path {
				data, err := io.ReadAll(tr)
				rc.Close()
				if err != nil {
					t.Fatal(err)
				}
				return data
			}
		}
		rc.Close()
	}
	t.Fatalf("%s is not in the image", path)
	return nil
}

var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// TestIndexPerPlatform builds the runner (the shipped build) and a small
// static program for linux/amd64 and linux/arm64, pushes them as image
// indexes the way `make images` does, and reads them back: one manifest per
// platform, each image's config naming its platform and its binary an ELF
// executable for that platform's machine; the arm64 runner stays under the
// runner's size bar.
func TestIndexPerPlatform(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	tests := []struct {
		kind, pkg, tags, path string
	}{
		{kind: "runner", pkg: "cmd/sandbox-runner", tags: runnerTags, path: ociimage.RunnerPath},
		// The webhook and agent images are laid out alike around their
		// binaries; a small program stands in for them (building both for
		// two platforms is minutes of CPU, paid by make images).
		{kind: "agent", pkg: "e2e/images/pause", path: "/sandbox-agent"},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			var entries []string
			for _, arch := range []string{"amd64", "arm64"} {
				bin := buildFor(t, tc.pkg, arch, tc.tags)
				entries = append(entries, "linux/"+arch+"="+bin)
				if tc.kind == "runner" {
					fi, err := os.Stat(bin)
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("runner for linux/%s: %.2f MiB", arch, float64(fi.Size())/(1<<20))
					if fi.Size() >= runnerMaxSize {
						t.Errorf("the runner for linux/%s is %.2f MiB, the limit is 6 MiB", arch, float64(fi.Size())/(1<<20))
					}
				}
			}
			ref := host + "/" + tc.kind + ":multi"
			var out bytes.Buffer
			args := []string{"-kind", tc.kind, "-binary", strings.Join(entries, ","), "-ca-certs", "", "-ref", ref, "-push", "-insecure"}
			if err := run(t.Context(), args, &out); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out.String(), "pushed index "+ref+"@sha256:") || !strings.Contains(out.String(), "(linux/amd64, linux/arm64)") {
				t.Errorf("output %q, want a pushed index line naming both platforms", out.String())
			}

			r, err := name.ParseReference(ref, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := remote.Index(r, remote.WithContext(t.Context()))
			if err != nil {
				t.Fatalf("reading the index: %v", err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(im.Manifests) != 2 {
				t.Fatalf("index has %d manifests, want 2", len(im.Manifests))
			}
			for i, arch := range []string{"amd64", "arm64"} {
				d := im.Manifests[i]
				if d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != arch {
					t.Errorf("manifest %d has platform %v, want linux/%s", i, d.Platform, arch)
					continue
				}
				img, err := idx.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cf.OS != "linux" || cf.Architecture != arch {
					t.Errorf("the %s image's config says %s/%s", arch, cf.OS, cf.Architecture)
				}
				f, err := elf.NewFile(bytes.NewReader(fileFromImage(t, img, tc.path)))
				if err != nil {
					t.Fatalf("%s in the %s image: %v", tc.path, arch, err)
				}
				if f.Machine != elfMachine[arch] {
					t.Errorf("%s in the %s image has ELF machine %s, want %s", tc.path, arch, f.Machine, elfMachine[arch])
				}
			}

			// A runtime of either platform resolves the tag to its own image.
			for _, arch := range []string{"amd64", "arm64"} {
				img, err := remote.Image(r, remote.WithContext(t.Context()), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
				if err != nil {
					t.Fatal(err)
				}
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cf.Architecture != arch {
					t.Errorf("pulling for linux/%s got a %s image", arch, cf.Architecture)
				}
			}
		})
	}
}

// TestIndexRefusesWrongBinary: a binary for another machine, a dynamic or
// non-ELF file, or a bad platform never makes it into an index.
func TestIndexRefusesWrongBinary(t *testing.T) {
	t.Parallel()
	amd64 := buildFor(t, "e2e/images/pause", "amd64", "")
	script := fakeBinary(t)
	tests := []struct {
		name, binary, want string
	}{
		{"amd64 binary as arm64", "linux/amd64=" + amd64 + ",linux/arm64=" + amd64, "its ELF machine is EM_X86_64, arm64 needs EM_AARCH64"},
		{"not ELF", "linux/amd64=" + script, "not an ELF executable"},
		{"missing", "linux/amd64=" + script + ".missing", "no such file"},
		{"bad platform", "linux=" + amd64, "want os/arch"},
		{"no path", "linux/amd64=", "want os/arch=path"},
		{"same platform twice", "linux/amd64=" + amd64 + ",linux/amd64=" + amd64, "two images for linux/amd64"},
		{"tarball", "linux/amd64=" + amd64 + ",tarball", "want os/arch=path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := run(t.Context(), []string{"-kind", "agent", "-binary", tc.binary, "-ca-certs", "", "-ref", "example.test/agent:v1"}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	err := run(t.Context(), []string{"-kind", "agent", "-binary", "linux/amd64=" + amd64, "-ca-certs", "", "-ref", "example.test/agent:v1", "-tarball", filepath.Join(t.TempDir(), "x.tar")}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "-tarball writes a single image") {
		t.Errorf("an index with -tarball: error %v", err)
	}
}
