# Generated code, manifests and documentation. Each generate-* target has a
# verify-* twin that fails, naming the generate-* target to run, when what is
# committed differs from what the generator makes; `make verify` (part of
# `make test`) runs them all.
#   code:          deep-copy functions of api/v1alpha1 and the CRDs the chart
#                  installs (charts/sandbox-injector/crds), by controller-gen
#   values-schema: the pool items of the chart's values.schema.json, from the
#                  SandboxPool CRD (hack/chartgen)
#   chart-readme:  the chart README from README.md.tmpl and values.yaml, and
#                  the project README's values reference (hack/chartgen)
#   flags:         the project README's flag reference of sandbox-webhook,
#                  sandbox-agent and sandbox-runner, from their flag sets
#                  (TestReadmeFlags in each cmd/; -p 1: they share README.md)

TEST_PARTS += verify

CRD_DIR := $(ROOT)/charts/sandbox-injector/crds
FLAG_DOC_PKGS := ./cmd/sandbox-webhook ./cmd/sandbox-agent ./cmd/sandbox-runner

.PHONY: generate
generate: generate-code generate-values-schema generate-chart-readme generate-flags ## Regenerate every generated file (code, CRDs, chart schema and README, flag reference)

.PHONY: verify
verify: verify-code verify-values-schema verify-chart-readme verify-flags ## Fail when a generated file differs from what its generator makes
	@echo "verify: generated files are up to date"

.PHONY: generate-code
generate-code: tool-controller-gen ## Regenerate deep-copy code and the CRDs from api/v1alpha1
	$(BIN)/controller-gen object paths=./api/...
	$(BIN)/controller-gen crd paths=./api/... output:crd:dir=$(CRD_DIR)

.PHONY: verify-code
verify-code: generate-code
	@if ! git diff --quiet -- api $(CRD_DIR) || [ -n "$$(git ls-files --others --exclude-standard -- api $(CRD_DIR))" ]; then \
		echo "verify-code: generated files are out of date; run make generate-code and commit:"; \
		git status --short -- api $(CRD_DIR); exit 1; fi

# The schema follows the CRD, so it is made after it.
.PHONY: generate-values-schema
generate-values-schema: generate-code ## Regenerate the pool items of the chart's values.schema.json from the SandboxPool CRD
	$(GO) run ./hack/chartgen schema

.PHONY: verify-values-schema
verify-values-schema: generate-code
	$(GO) run ./hack/chartgen -check schema

.PHONY: generate-chart-readme
generate-chart-readme: ## Regenerate the chart README (README.md.tmpl) and the README's values reference from values.yaml
	$(GO) run ./hack/chartgen readme

.PHONY: verify-chart-readme
verify-chart-readme:
	$(GO) run ./hack/chartgen -check readme

.PHONY: generate-flags
generate-flags: ## Regenerate the README's flag reference from the binaries' flag sets
	REFRESH_README=true $(GO) test -p 1 -count=1 -run '^TestReadmeFlags$$' $(FLAG_DOC_PKGS)

.PHONY: verify-flags
verify-flags:
	@$(GO) test -count=1 -run '^TestReadmeFlags$$' $(FLAG_DOC_PKGS) || { \
		echo "verify-flags: the README's flag reference is out of date; run make generate-flags and commit"; exit 1; }
