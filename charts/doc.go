// Package charts holds the project's Helm chart (sandbox-injector/) and the Go
// helpers that render it with the real helm binary, so that tests here and
// elsewhere (the webhook's envtest integration test registers exactly the
// MutatingWebhookConfiguration the chart renders) work from the same source as
// a real install.
//
// The helpers run `helm template`; they need the helm binary that
// `make tools-envtest` builds into bin/ (HelmPath finds it). Nothing here talks
// to a cluster: server-side dry-run of the rendered objects against a real
// kube-apiserver lives in this package's tests.
package charts
