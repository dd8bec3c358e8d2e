//go:build tools

// Package peers pins the programs the side-by-side benchmarks run beside our
// own: kubernetes-sigs/agent-sandbox's controller (make bench-claim) and kwok
// (make bench-peers-scale). A module of its own, so that their dependencies
// never move the versions the Kubernetes build in ../go.mod or the project's
// root go.mod use. See make/10-tools.mk.
package peers

import (
	_ "sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
