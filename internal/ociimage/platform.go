package ociimage

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Platforms are the platforms the project's images (runner, webhook, agent)
// are published for, in index order.
var Platforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64"},
}

// ParsePlatform parses "os/arch" or "os/arch/variant", such as
// "linux/arm64".
func ParsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("parsing platform %q: want os/arch, such as linux/arm64", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// machines are the ELF machines of the Go architectures images are built for.
var machines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"arm":     elf.EM_ARM,
	"386":     elf.EM_386,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
	"riscv64": elf.EM_RISCV,
}

// ErrWrongPlatform reports a binary that cannot run on the platform of the
// image it was meant for.
var ErrWrongPlatform = errors.New("binary does not match the platform")

// CheckELF checks that the file at path is a static ELF executable for p: a
// Linux platform, the ELF machine (e_machine) of p's architecture, and no
// interpreter, since the images have no dynamic loader. The error wraps
// ErrWrongPlatform when the file is for another machine or is not static.
func CheckELF(path string, p v1.Platform) error {
	if p.OS != "linux" {
		return fmt.Errorf("checking %s: %w: images are built for linux, not %s", path, ErrWrongPlatform, p.OS)
	}
	want, ok := machines[p.Architecture]
	if !ok {
		return fmt.Errorf("checking %s: unknown architecture %q", path, p.Architecture)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("checking %s for %s: %w", path, p.Architecture, err)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("checking %s: %w: not an ELF executable: %w", path, ErrWrongPlatform, err)
	}
	defer f.Close()
	if f.Machine != want {
		return fmt.Errorf("checking %s: %w: its ELF machine is %s, %s needs %s", path, ErrWrongPlatform, f.Machine, p.Architecture, want)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("checking %s: %w: it is dynamically linked (build it with CGO_ENABLED=0)", path, ErrWrongPlatform)
		}
	}
	return nil
}

// PlatformImage is one image of an index and the platform it is for.
type PlatformImage struct {
	Platform v1.Platform
	Image    v1.Image
}

// Index returns an OCI image index of images, one manifest per platform, in
// the order given. A runtime pulling the index's reference gets the image of
// its own platform.
func Index(images []PlatformImage) (v1.ImageIndex, error) {
	if len(images) == 0 {
		return nil, errors.New("building image index: no images")
	}
	seen := map[string]bool{}
	var adds []mutate.IndexAddendum
	for _, pi := range images {
		key := pi.Platform.String()
		if seen[key] {
			return nil, fmt.Errorf("building image index: two images for %s", key)
		}
		seen[key] = true
		mt, err := pi.Image.MediaType()
		if err != nil {
			return nil, fmt.Errorf("building image index: media type of the %s image: %w", key, err)
		}
		p := pi.Platform
		adds = append(adds, mutate.IndexAddendum{
			Add:        pi.Image,
			Descriptor: v1.Descriptor{MediaType: mt, Platform: &p},
		})
	}
	base := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	return mutate.AppendManifests(base, adds...), nil
}
