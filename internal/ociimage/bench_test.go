package ociimage_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"sandbox.io/injector/internal/ociimage"
)

// BenchmarkBuildRunnerImage measures laying out, compressing and digesting
// a runner image around a 6 MiB binary (the runner's size budget): what
// `make images` pays per image. Run: go test -run '^$' -bench . ./internal/ociimage
func BenchmarkBuildRunnerImage(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "sandbox-runner")
	data := make([]byte, 6<<20)
	// Half random (incompressible, like code), half zeros.
	if _, err := rand.Read(data[:len(data)/2]); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		b.Fatal(err)
	}
	spec, err := ociimage.Runner(bin, "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		img, err := ociimage.Build(spec)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := img.Digest(); err != nil {
			b.Fatal(err)
		}
	}
}
