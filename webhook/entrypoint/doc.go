// Package entrypoint reads an image's ENTRYPOINT and CMD from its registry,
// for pods whose containers do not set a command.
//
// A Resolver resolves a reference to a digest (one HEAD request for a tag,
// none for a digest), then reads the config of the image for the pod's
// platform, and caches the result by digest, platform and credentials.
// Credentials come from the pod's image pull secrets through
// internal/keychain, which matches registries the way the kubelet does.
// The webhook's admission handler is its caller; it bounds every lookup with
// a short timeout.
package entrypoint
