# Generated code and manifests: deep-copy functions of api/v1alpha1 and the
# SandboxPool CRD the chart installs (charts/sandbox-injector/crds).

TEST_PARTS += verify

CRD_DIR := $(ROOT)/charts/sandbox-injector/crds

.PHONY: generate
generate: tool-controller-gen ## Regenerate deep-copy code and the CRDs from api/v1alpha1
	$(BIN)/controller-gen object paths=./api/...
	$(BIN)/controller-gen crd paths=./api/... output:crd:dir=$(CRD_DIR)

.PHONY: verify
verify: generate ## Fail when generated files differ from what is committed
	@if ! git diff --quiet -- api $(CRD_DIR) || [ -n "$$(git ls-files --others --exclude-standard -- api $(CRD_DIR))" ]; then \
		echo "verify: generated files are out of date; run make generate and commit:"; \
		git status --short -- api $(CRD_DIR); exit 1; fi
	@echo "verify: generated files are up to date"
