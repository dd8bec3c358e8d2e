package ociimage_test

import (
	"archive/tar"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"sandbox.io/injector/internal/ociimage"
)

// entry is what a test checks of one layer entry.
type entry struct {
	Type     byte
	Mode     int64
	UID, GID int
	Link     string
	Data     string
}

// layerEntries reads the single layer of img back into a map by path.
func layerEntries(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("got %d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = entry{Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Link: h.Linkname, Data: string(b)}
	}
	return got
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildLayerAndConfig(t *testing.T) {
	t.Parallel()
	src := writeFile(t, "from disk")
	img, err := ociimage.Build(ociimage.Spec{
		Files: []ociimage.File{
			{Path: "/app/bin/tool", Mode: 0o755, UID: 65532, GID: 65532, Source: src},
			{Path: "/etc/motd", Data: []byte("hi")},
			{Path: "/bin/sh", Mode: fs.ModeSymlink, Target: "/app/bin/tool"},
			{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
			{Path: "/opt/setuid", Mode: fs.ModeSetuid | 0o755, Data: []byte{}},
		},
		Config: ociimage.Config{
			Entrypoint: []string{"/app/bin/tool"},
			Cmd:        []string{"a", "b"},
			User:       "65532:65532",
			Env:        []string{"A=1"},
			WorkingDir: "/app",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]entry{
		"app/":         {Type: tar.TypeDir, Mode: 0o755},
		"app/bin/":     {Type: tar.TypeDir, Mode: 0o755},
		"app/bin/tool": {Type: tar.TypeReg, Mode: 0o755, UID: 65532, GID: 65532, Data: "from disk"},
		"bin/":         {Type: tar.TypeDir, Mode: 0o755},
		"bin/sh":       {Type: tar.TypeSymlink, Mode: 0o777, Link: "/app/bin/tool"},
		"etc/":         {Type: tar.TypeDir, Mode: 0o755},
		"etc/motd":     {Type: tar.TypeReg, Mode: 0o644, Data: "hi"},
		"opt/":         {Type: tar.TypeDir, Mode: 0o755},
		"opt/setuid":   {Type: tar.TypeReg, Mode: 0o4755},
		"tmp/":         {Type: tar.TypeDir, Mode: 0o1777},
	}
	if diff := cmp.Diff(want, layerEntries(t, img)); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	wantCfg := v1.Config{
		Entrypoint: []string{"/app/bin/tool"},
		Cmd:        []string{"a", "b"},
		User:       "65532:65532",
		Env:        []string{"A=1"},
		WorkingDir: "/app",
	}
	if diff := cmp.Diff(wantCfg, cf.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mt), "oci") {
		t.Errorf("manifest media type %s, want an OCI one", mt)
	}
}

func TestBuildIsReproducible(t *testing.T) {
	t.Parallel()
	spec := ociimage.Spec{
		Files:  []ociimage.File{{Path: "/x", Data: []byte("x")}, {Path: "/d/y", Data: []byte("y")}},
		Config: ociimage.Config{Cmd: []string{"/x"}},
	}
	// The same files in another order give the same image.
	reordered := spec
	reordered.Files = []ociimage.File{spec.Files[1], spec.Files[0]}
	var digests []v1.Hash
	for _, s := range []ociimage.Spec{spec, spec, reordered} {
		img, err := ociimage.Build(s)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] || digests[0] != digests[2] {
		t.Errorf("digests differ: %v", digests)
	}
}

func TestBuildRejectsBadSpecs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files []ociimage.File
		want  string
	}{
		{"duplicate", []ociimage.File{{Path: "/a", Data: []byte{}}, {Path: "/a/", Data: []byte{}}}, "duplicate path"},
		{"relative", []ociimage.File{{Path: "a", Data: []byte{}}}, "not absolute"},
		{"root", []ociimage.File{{Path: "/", Mode: fs.ModeDir}}, "root is implicit"},
		{"parent is a file", []ociimage.File{{Path: "/a", Data: []byte{}}, {Path: "/a/b", Data: []byte{}}}, "not a directory"},
		{"symlink without target", []ociimage.File{{Path: "/l", Mode: fs.ModeSymlink}}, "empty target"},
		{"no content", []ociimage.File{{Path: "/f"}}, "no data and no source"},
		{"missing source", []ociimage.File{{Path: "/f", Source: "/nonexistent/file"}}, "reading source"},
		{"device", []ociimage.File{{Path: "/dev/null", Mode: fs.ModeDevice}}, "unsupported file type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ociimage.Build(ociimage.Spec{Files: tc.files})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build error %v, want one containing %q", err, tc.want)
			}
		})
	}
	_, err := ociimage.Build(ociimage.Spec{Files: []ociimage.File{{Path: "/a", Data: []byte{}}, {Path: "/a", Data: []byte{}}}})
	if !errors.Is(err, ociimage.ErrDuplicatePath) {
		t.Errorf("duplicate error %v is not ErrDuplicatePath", err)
	}
}

func TestPushToRegistry(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	spec, err := ociimage.Runner(writeFile(t, "runner binary"), "")
	if err != nil {
		t.Fatal(err)
	}
	img, err := ociimage.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ociimage.ParseReference(host+"/sandbox-runner:test", true)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := ociimage.Push(t.Context(), img, ref, srv.Client().Transport)
	if err != nil {
		t.Fatal(err)
	}

	pulled, err := remote.Image(ref, remote.WithContext(t.Context()), remote.WithTransport(srv.Client().Transport))
	if err != nil {
		t.Fatal(err)
	}
	pd, err := pulled.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if pd != digest {
		t.Errorf("pulled digest %s, pushed %s", pd, digest)
	}
	cf, err := pulled.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/sandbox-runner/sandbox-runner"}, cf.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cf.Config.User)
	}
	got := layerEntries(t, pulled)
	bin, ok := got["sandbox-runner/sandbox-runner"]
	if !ok || bin.Mode != 0o755 || bin.Data != "runner binary" {
		t.Errorf("runner binary entry %+v (present %v), want mode 0755 with the binary's content", bin, ok)
	}
	if d := got["sandbox-runner/"]; d.Type != tar.TypeDir {
		t.Errorf("runner directory entry %+v, want a directory", d)
	}
}

func TestPushToUnreachableRegistryFails(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there any more
	img, err := ociimage.Build(ociimage.Spec{Files: []ociimage.File{{Path: "/x", Data: []byte("x")}}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ociimage.ParseReference(host+"/x:1", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ociimage.Push(t.Context(), img, ref, nil); err == nil {
		t.Fatal("push to a closed registry succeeded")
	}
}

func TestWriteTarballRoundTrip(t *testing.T) {
	t.Parallel()
	spec, err := ociimage.Static(ociimage.StaticOptions{Binary: writeFile(t, "hello"), Cmd: []string{"hi"}, Root: true})
	if err != nil {
		t.Fatal(err)
	}
	img, err := ociimage.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ociimage.ParseReference("registry.test/hello:v1", false)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hello.tar")
	if err := ociimage.WriteTarball(path, img, ref); err != nil {
		t.Fatal(err)
	}
	loaded, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	got, err := loaded.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("config digest from tarball %s, want %s", got, want)
	}
	cf, err := loaded.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v1.Config{
		Entrypoint: []string{"/bin"},
		Cmd:        []string{"hi"},
		User:       "0:0",
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		WorkingDir: "/",
	}, cf.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestBusybox(t *testing.T) {
	t.Parallel()
	bb, err := filepath.Abs("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bb); err != nil {
		t.Skip("no /bin/busybox (Debian busybox-static); run hack/install-deps.sh")
	}
	spec, err := ociimage.Busybox(bb)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ociimage.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	got := layerEntries(t, img)
	if sh := got["bin/sh"]; sh.Type != tar.TypeSymlink || sh.Link != "/bin/busybox" {
		t.Errorf("bin/sh entry %+v, want a symlink to /bin/busybox", sh)
	}
	if b := got["bin/busybox"]; b.Type != tar.TypeReg || b.Mode != 0o755 || len(b.Data) == 0 {
		t.Errorf("bin/busybox entry type %c mode %o size %d, want a 0755 file", b.Type, b.Mode, len(b.Data))
	}
}

func TestStaticNeedsBinary(t *testing.T) {
	t.Parallel()
	if _, err := ociimage.Static(ociimage.StaticOptions{}); err == nil {
		t.Error("Static without a binary succeeded")
	}
	if _, err := ociimage.Static(ociimage.StaticOptions{Binary: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("Static with a missing binary succeeded")
	}
}
