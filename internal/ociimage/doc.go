// Package ociimage builds small OCI images from a list of files, without a
// container engine, for one platform (Build, BuildFor) or as an image index of
// several (Index; the project's images are published for Platforms), checks
// that a binary suits its platform (CheckELF), and pushes them to a registry
// or writes single images as tarballs.
//
// It is the library behind cmd/sandbox-image, which builds the project's
// images (sandbox-runner, sandbox-webhook, sandbox-agent) and the e2e test
// images (pause, hello, busybox). Builds are reproducible: the same inputs give
// the same digest, because every timestamp is fixed and entries are sorted.
package ociimage
