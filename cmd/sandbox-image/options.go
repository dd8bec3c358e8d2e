package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"sandbox.io/injector/internal/ociimage"
)

// kinds are the images this tool knows how to lay out.
var kinds = []string{"runner", "webhook", "agent", "pause", "hello", "busybox"}

// helloCmd is the CMD of the hello test image; the e2e test checks that the
// webhook read it from the registry.
var helloCmd = []string{"hello", "from", "the", "image", "cmd"}

type options struct {
	kind     string
	binary   string
	caCerts  string
	ref      string
	push     bool
	insecure bool
	tarball  string
}

func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.kind, "kind", "", "image to build: "+strings.Join(kinds, ", ")+" (SANDBOX_IMAGE_KIND)")
	fs.StringVar(&o.binary, "binary", "", "static binary to put in the image; for busybox, default /bin/busybox. "+
		"Comma-separated os/arch=path entries (linux/amd64=bin/linux-amd64/x,linux/arm64=bin/linux-arm64/x) build an image index with one image per platform, "+
		"each binary checked to be a static ELF executable for its architecture (SANDBOX_IMAGE_BINARY)")
	fs.StringVar(&o.caCerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into runner, webhook and agent images; empty for none (SANDBOX_IMAGE_CA_CERTS)")
	fs.StringVar(&o.ref, "ref", "", "image reference, e.g. host:port/sandbox-runner:v1 (SANDBOX_IMAGE_REF)")
	fs.BoolVar(&o.push, "push", false, "push the image to the reference's registry (SANDBOX_IMAGE_PUSH)")
	fs.BoolVar(&o.insecure, "insecure", false, "allow plain HTTP to the registry (SANDBOX_IMAGE_INSECURE)")
	fs.StringVar(&o.tarball, "tarball", "", "also write the image as a tarball to this file (SANDBOX_IMAGE_TARBALL)")
}

// applyEnv sets every flag not given on the command line from its
// SANDBOX_IMAGE_* environment variable.
func (o *options) applyEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "SANDBOX_IMAGE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(env)
		if !ok || set[f.Name] {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("setting -%s from %s: %w", f.Name, env, err))
		}
	})
	return errors.Join(errs...)
}

func (o *options) validate() error {
	var errs []error
	if !slices.Contains(kinds, o.kind) {
		errs = append(errs, fmt.Errorf("-kind %q: want one of %s", o.kind, strings.Join(kinds, ", ")))
	}
	if o.binary == "" && o.kind != "busybox" {
		errs = append(errs, fmt.Errorf("-binary is required for -kind %s", o.kind))
	}
	if o.ref == "" {
		errs = append(errs, errors.New("-ref is required"))
	}
	return errors.Join(errs...)
}

// platformBinary is one entry of -binary: a binary and, for an index, the
// platform it is built for.
type platformBinary struct {
	platform *v1.Platform // nil: a single linux/amd64 image
	path     string
}

// binaries parses -binary: one plain path (a single image), or
// comma-separated os/arch=path entries (an index).
func (o *options) binaries() ([]platformBinary, error) {
	if !strings.Contains(o.binary, "=") {
		return []platformBinary{{path: o.binary}}, nil
	}
	var out []platformBinary
	for _, entry := range strings.Split(o.binary, ",") {
		plat, path, ok := strings.Cut(strings.TrimSpace(entry), "=")
		if !ok || path == "" {
			return nil, fmt.Errorf("-binary entry %q: want os/arch=path", entry)
		}
		p, err := ociimage.ParsePlatform(plat)
		if err != nil {
			return nil, fmt.Errorf("-binary entry %q: %w", entry, err)
		}
		out = append(out, platformBinary{platform: &p, path: path})
	}
	return out, nil
}

// spec lays out the image of o.kind around binary.
func (o *options) spec(binary string) (ociimage.Spec, error) {
	switch o.kind {
	case "runner":
		return ociimage.Runner(binary, o.caCerts)
	case "webhook":
		return ociimage.Static(ociimage.StaticOptions{Binary: binary, Path: "/sandbox-webhook", CACerts: o.caCerts})
	case "agent":
		return ociimage.Static(ociimage.StaticOptions{Binary: binary, Path: "/sandbox-agent", CACerts: o.caCerts})
	case "pause":
		return ociimage.Static(ociimage.StaticOptions{Binary: binary, Path: "/pause"})
	case "hello":
		return ociimage.Static(ociimage.StaticOptions{Binary: binary, Path: "/hello", Cmd: helloCmd})
	case "busybox":
		bb := binary
		if bb == "" {
			bb = "/bin/busybox"
		}
		return ociimage.Busybox(bb)
	}
	return ociimage.Spec{}, fmt.Errorf("unknown kind %q", o.kind)
}
