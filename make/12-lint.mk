# Static checks: go vet, a gofmt check and golangci-lint (configured by
# .golangci.yml). golangci-lint is pinned by tools/lint/go.mod, a module of its
# own like tools/codegen, so that the linters' dependencies never move the
# Kubernetes build (tools/go.mod) or the project's root go.mod.

TEST_PARTS += lint

LINT_MOD := $(ROOT)/tools/lint/go.mod
GOLANGCI_LINT_VERSION := $(shell awk '{ sub(/^require[ \t]+/, "") } $$1 == "github.com/golangci/golangci-lint/v2" { print $$2; exit }' $(LINT_MOD))

# make tools builds it too.
tools: tool-golangci-lint

.PHONY: tool-golangci-lint
tool-golangci-lint: ## Build golangci-lint (pinned by tools/lint/go.mod) into ./bin
	@TOOLS_MODULE_DIR=tools/lint $(BUILD_TOOL) golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint $(GOLANGCI_LINT_VERSION) \
		-ldflags '-s -w -X main.version=$(patsubst v%,%,$(GOLANGCI_LINT_VERSION))'

.PHONY: lint
lint: vet tool-golangci-lint ## Static checks: go vet, gofmt, and golangci-lint with .golangci.yml (errorlint, forbidigo, sloglint, importas, gocritic, the defaults)
	$(BIN)/golangci-lint run ./...
