// Package selftest checks a live installation end to end through the API
// server: it asks for a server-side dry-run create of a pod that opted in to
// injection and of one that opted out, in a namespace the caller names, and
// reports whether the first came back injected (sandbox.io/status says so and
// the runner wraps its container) and the second untouched. Nothing is
// created: a dry run runs every admission webhook and policy, then stops.
//
// `sandbox-webhook selftest` runs it; the chart's `helm test` hook runs that
// command in a pod whose ServiceAccount may only create pods in that one
// namespace.
package selftest
