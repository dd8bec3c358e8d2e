// Package e2e holds the end-to-end tests that run against the real local
// single-node cluster brought up by e2e/cluster/up.sh (`make cluster-up`).
//
// The tests run only when SANDBOX_E2E=1 (`make e2e` sets it); otherwise each
// test skips with a message saying how to run it, so a plain `go test ./...`
// stays green without a cluster. They use $KUBECONFIG, by default the
// cluster's own _out/cluster/kubeconfig. Settings follow e2e/cluster/lib.sh and can be overridden by the
// same SANDBOX_CLUSTER_* environment variables.
package e2e
