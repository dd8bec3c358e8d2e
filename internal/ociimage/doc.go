// Package ociimage builds small single-platform (linux/amd64) OCI images from
// a list of files, without a container engine, and pushes them to a registry
// or writes them as tarballs.
//
// It is the library behind cmd/sandbox-image, which builds the project's
// images (sandbox-runner, sandbox-webhook, sandbox-agent) and the e2e test
// images (pause, hello, busybox). Builds are reproducible: the same inputs give
// the same digest, because every timestamp is fixed and entries are sorted.
package ociimage
