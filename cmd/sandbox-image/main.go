// Command sandbox-image builds the project's OCI images (runner, webhook,
// agent) and the e2e test images (pause, hello, busybox) from local files,
// without a container engine, and pushes them to a registry or writes a
// tarball. Every flag has a SANDBOX_IMAGE_* environment variable.
//
//	sandbox-image -kind runner -binary bin/sandbox-runner -ref 10.250.0.1:5000/sandbox-runner:v1 -push -insecure
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"sandbox.io/injector/internal/ociimage"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		slog.Error("sandbox-image", "error", err)
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
	spec, err := o.spec()
	if err != nil {
		return err
	}
	img, err := ociimage.Build(spec)
	if err != nil {
		return fmt.Errorf("building %s image: %w", o.kind, err)
	}
	ref, err := ociimage.ParseReference(o.ref, o.insecure)
	if err != nil {
		return err
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
