// Package version holds the build version of every sandbox-injector binary,
// stamped at link time with -ldflags "-X sandbox.io/injector/internal/version.Version=...".
package version

// Version is the release of this build; "dev" when not stamped.
var Version = "dev"
