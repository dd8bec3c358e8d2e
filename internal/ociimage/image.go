package ociimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Platform of the images Build makes; BuildFor takes any other.
const (
	OS           = "linux"
	Architecture = "amd64"
)

// epoch is the timestamp of every layer entry and of the image config, so
// that builds are reproducible.
var epoch = time.Unix(0, 0).UTC()

// File is one entry of an image's single layer.
type File struct {
	// Path is the absolute path in the image, for example
	// "/sandbox-runner/sandbox-runner".
	Path string
	// Mode holds the permission bits and the type: fs.ModeDir for a
	// directory, fs.ModeSymlink for a symlink, no type bit for a regular
	// file. Zero means 0o755 for a directory and 0o644 for a file.
	Mode fs.FileMode
	// UID and GID own the entry; zero is root.
	UID, GID int
	// Data is the content of a regular file. When nil, Source is read.
	Data []byte
	// Source is a file on disk whose content becomes the file's content,
	// read when the image is built.
	Source string
	// Target is the link target of a symlink.
	Target string
}

// Config is the part of the OCI image config the images need.
type Config struct {
	Entrypoint []string
	Cmd        []string
	// User is the user the container runs as: numeric ("65532" or
	// "65532:65532") for images that have no /etc/passwd entry to resolve.
	User       string
	Env        []string
	WorkingDir string
	Labels     map[string]string
}

// Spec describes an image: its files, in one layer, and its config.
type Spec struct {
	Files  []File
	Config Config
}

// Build returns the linux/amd64 OCI image described by spec. Parent
// directories that spec does not list are added as root-owned 0755
// directories. Two entries for the same path are an error.
func Build(spec Spec) (v1.Image, error) {
	return BuildFor(spec, v1.Platform{OS: OS, Architecture: Architecture})
}

// BuildFor is Build for another platform: the image config names p's
// OS, architecture and variant. The files are taken as they are; see
// CheckELF for making sure a binary suits p.
func BuildFor(spec Spec, p v1.Platform) (v1.Image, error) {
	layerTar, err := layerBytes(spec.Files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("creating layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "sandbox-image"},
	})
	if err != nil {
		return nil, fmt.Errorf("appending layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = p.OS
	cf.Architecture = p.Architecture
	cf.Variant = p.Variant
	cf.Created = v1.Time{Time: epoch}
	cf.Config = v1.Config{
		Entrypoint: spec.Config.Entrypoint,
		Cmd:        spec.Config.Cmd,
		User:       spec.Config.User,
		Env:        spec.Config.Env,
		WorkingDir: spec.Config.WorkingDir,
		Labels:     spec.Config.Labels,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting config: %w", err)
	}
	return img, nil
}

// layerBytes renders files as an uncompressed tar, parents first, sorted by
// path.
func layerBytes(files []File) ([]byte, error) {
	entries := map[string]File{}
	for _, f := range files {
		p, err := cleanPath(f.Path)
		if err != nil {
			return nil, err
		}
		if _, dup := entries[p]; dup {
			return nil, fmt.Errorf("adding %q: %w", f.Path, ErrDuplicatePath)
		}
		f.Path = p
		entries[p] = f
	}
	// Add missing parents as root-owned directories.
	for p := range entries {
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			if e, ok := entries[dir]; ok {
				if !e.Mode.IsDir() {
					return nil, fmt.Errorf("adding %q: parent %q is not a directory", p, dir)
				}
				continue
			}
			entries[dir] = File{Path: dir, Mode: fs.ModeDir | 0o755}
		}
	}
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	slices.Sort(paths) // a parent sorts before its children

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		if err := writeEntry(tw, entries[p]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing layer: %w", err)
	}
	return buf.Bytes(), nil
}

func writeEntry(tw *tar.Writer, f File) error {
	hdr := &tar.Header{
		Name:    strings.TrimPrefix(f.Path, "/"),
		Uid:     f.UID,
		Gid:     f.GID,
		ModTime: epoch,
		Format:  tar.FormatPAX,
	}
	perm := int64(f.Mode.Perm())
	var data []byte
	switch {
	case f.Mode.IsDir():
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		if perm == 0 {
			perm = 0o755
		}
	case f.Mode&fs.ModeSymlink != 0:
		if f.Target == "" {
			return fmt.Errorf("adding symlink %q: empty target", f.Path)
		}
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = f.Target
		perm = 0o777
	case f.Mode.IsRegular():
		hdr.Typeflag = tar.TypeReg
		data = f.Data
		if data == nil {
			if f.Source == "" {
				return fmt.Errorf("adding %q: no data and no source", f.Path)
			}
			b, err := os.ReadFile(f.Source)
			if err != nil {
				return fmt.Errorf("reading source of %q: %w", f.Path, err)
			}
			data = b
		}
		if perm == 0 {
			perm = 0o644
		}
		hdr.Size = int64(len(data))
	default:
		return fmt.Errorf("adding %q: unsupported file type %v", f.Path, f.Mode.Type())
	}
	hdr.Mode = perm
	if f.Mode&fs.ModeSetuid != 0 {
		hdr.Mode |= 0o4000
	}
	if f.Mode&fs.ModeSetgid != 0 {
		hdr.Mode |= 0o2000
	}
	if f.Mode&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing header of %q: %w", f.Path, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("writing %q: %w", f.Path, err)
	}
	return nil
}

// ErrDuplicatePath is returned by Build when two files share a path.
var ErrDuplicatePath = errors.New("duplicate path")

func cleanPath(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("adding %q: path is not absolute", p)
	}
	c := path.Clean(p)
	if c == "/" {
		return "", fmt.Errorf("adding %q: the root is implicit", p)
	}
	return c, nil
}
