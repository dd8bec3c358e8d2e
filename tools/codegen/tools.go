//go:build tools

// Package codegen pins the code generators (controller-gen) in a module of
// their own, so that their dependencies never move the versions the
// Kubernetes build in ../go.mod uses.
package codegen

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
