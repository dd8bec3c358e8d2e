// Package charts holds the project's Helm chart (sandbox-injector/) and the Go
// helpers that render it with the real helm binary, so that tests here and
// elsewhere work from the same source as a real install: the webhook's
// envtest integration test registers exactly the MutatingWebhookConfiguration
// the chart renders (Render, MutatingWebhookConfiguration, then PointAt to
// send it to a local server).
//
// The helpers run `helm template`; they need the helm binary that
// `make tools-envtest` builds into bin/ (HelmPath finds it, $HELM overrides).
// Nothing here talks to a cluster. This package's tests do, against a real
// kube-apiserver (envtest): server-side dry-run of every rendered object,
// the guard policy and the webhooks' routing in force, helm install and
// upgrade, cert-manager's own controllers issuing the chart's certificates
// (certmanager-harness/, a module of its own), and the real sandbox-webhook
// run with the chart's arguments under the chart's RBAC.
package charts
