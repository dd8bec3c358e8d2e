// Package integration proves package certs against a real kube-apiserver and
// etcd (envtest): replicas racing on an empty namespace, forced write races,
// corrupt Secrets replaced with an Event, and a CA rotation while pods are
// admitted through the API server every 100 ms.
//
// These tests live apart from package certs so that its fuzz target runs in a
// small test binary: linked with envtest and the webhook, coverage-guided
// fuzzing of certs ran a few executions a minute instead of thousands a
// second.
package integration
