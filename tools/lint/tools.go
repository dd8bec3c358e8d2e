//go:build tools

// Package lint pins golangci-lint in a module of its own, so that the
// linters' dependencies never move the versions the Kubernetes build in
// ../go.mod uses. make tool-golangci-lint builds it; .golangci.yml at the
// repository root configures it.
package lint

import _ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
