# sandbox-injector: every entry point a developer or CI needs.
# `make help` lists the targets. Area-specific targets live in make/*.mk.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT     := $(abspath .)
BIN      := $(ROOT)/bin
GO       ?= go
# Computed once per make run, so that every target of one run uses one tag.
ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
LDFLAGS  := -s -w -X sandbox.io/injector/internal/version.Version=$(VERSION)
export PATH := $(BIN):$(PATH)

# Fragments add their parts to these lists before the aggregate targets below
# are read.
TEST_PARTS  :=
BENCH_PARTS :=
include $(sort $(wildcard make/*.mk))

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  \033[36m%-22s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: build-runner ## Build every binary into ./bin (the runner with its own tags: make/30-runner.mk)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ $(filter-out ./cmd/sandbox-runner,$(addprefix ./,$(wildcard cmd/*)))

.PHONY: fmt
fmt: ## Format the Go code
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet and a gofmt check
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: test-unit
test-unit: ## Go unit tests with the race detector (no cluster needed)
	$(GO) test -race -count=1 ./...

.PHONY: test
test: vet $(TEST_PARTS) ## Everything CI runs: vet, lint, unit, integration (real kube-apiserver), chart, e2e

.PHONY: bench
bench: $(BENCH_PARTS) ## Run the benchmarks and print their tables

.PHONY: clean
clean: ## Remove the project's own binaries (keeps the built tools in ./bin and the cluster's state in _out/cluster)
	rm -f $(addprefix $(BIN)/,$(notdir $(wildcard cmd/*)) pause hello)
