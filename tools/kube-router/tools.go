//go:build tools

// Package kuberouter pins kube-router, whose firewall alone enforces
// NetworkPolicy on the local cluster (e2e/cluster), in a module of its own:
// it builds against the Kubernetes libraries it was released with, which
// must not move the versions the Kubernetes build in ../go.mod uses.
package kuberouter

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
