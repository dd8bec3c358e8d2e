// Command sandbox-image builds the project's OCI images (runner, webhook,
// agent) and the e2e test images (pause, hello, busybox) from local files,
// without a container engine, and pushes them to a registry or writes a
// tarball. Every flag has a SANDBOX_IMAGE_* environment variable.
//
//	sandbox-image -kind runner -binary bin/sandbox-runner -ref 10.250.0.1:5000/sandbox-runner:v1 -push -insecure
//
// With -binary linux/amd64=<path>,linux/arm64=<path> it builds one image per
// platform, each around a binary checked to be a static ELF executable for
// that architecture, and pushes them as one OCI image index.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"

	"sandbox.io/injector/internal/ociimage"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		slog.Error("sandbox-image", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	fs := flag.NewFlagSet("sandbox-image", flag.ContinueOnError)
	var o options
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.applyEnv(fs); err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return err
	}
	bins, err := o.binaries()
	if err != nil {
		return err
	}
	ref, err := ociimage.ParseReference(o.ref, o.insecure)
	if err != nil {
		return err
	}
	if len(bins) == 1 && bins[0].platform == nil {
		return single(ctx, o, bins[0].path, ref, stdout)
	}
	return index(ctx, o, bins, ref, stdout)
}

// single builds, pushes or writes one linux/amd64 image.
func single(ctx context.Context, o options, binary string, ref name.Reference, stdout io.Writer) error {
	spec, err := o.spec(binary)
	if err != nil {
		return err
	}
	img, err := ociimage.Build(spec)
	if err != nil {
		return fmt.Errorf("building %s image: %w", o.kind, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("computing digest: %w", err)
	}
	if o.tarball != "" {
		if err := ociimage.WriteTarball(o.tarball, img, ref); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s %s@%s\n", o.tarball, ref, digest)
	}
	if o.push {
		if _, err := ociimage.Push(ctx, img, ref, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pushed %s@%s\n", ref, digest)
	}
	if !o.push && o.tarball == "" {
		fmt.Fprintf(stdout, "built %s@%s (neither -push nor -tarball given)\n", ref, digest)
	}
	return nil
}

// index builds one image per platform, each around a binary checked to be
// built for it, and pushes them as one image index.
func index(ctx context.Context, o options, bins []platformBinary, ref name.Reference, stdout io.Writer) error {
	if o.tarball != "" {
		return fmt.Errorf("-tarball writes a single image: give -binary one plain path, not %d platforms", len(bins))
	}
	var images []ociimage.PlatformImage
	var names []string
	for _, b := range bins {
		if err := ociimage.CheckELF(b.path, *b.platform); err != nil {
			return fmt.Errorf("-binary for %s: %w", b.platform, err)
		}
		spec, err := o.spec(b.path)
		if err != nil {
			return err
		}
		img, err := ociimage.BuildFor(spec, *b.platform)
		if err != nil {
			return fmt.Errorf("building %s image for %s: %w", o.kind, b.platform, err)
		}
		images = append(images, ociimage.PlatformImage{Platform: *b.platform, Image: img})
		names = append(names, b.platform.String())
	}
	idx, err := ociimage.Index(images)
	if err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return fmt.Errorf("computing digest of the index: %w", err)
	}
	platforms := strings.Join(names, ", ")
	if !o.push {
		fmt.Fprintf(stdout, "built index %s@%s (%s; -push not given)\n", ref, digest, platforms)
		return nil
	}
	if _, err := ociimage.PushIndex(ctx, idx, ref, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pushed index %s@%s (%s)\n", ref, digest, platforms)
	return nil
}
