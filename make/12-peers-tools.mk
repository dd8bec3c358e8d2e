# The peers the side-by-side benchmarks run beside our own controller
# (make bench-claim, make bench-peers-scale): kubernetes-sigs/agent-sandbox's
# controller and kwok, built from the Go module proxy into $(BIN). They live in
# a tools module of their own (tools/peers), so that their dependencies never
# move the Kubernetes build (tools/go.mod) or the project's root go.mod.
#
# agent-sandbox's CRDs (Sandbox, SandboxTemplate, SandboxWarmPool,
# SandboxClaim) come from that same module version in the module cache, copied
# into $(PEERS_CRDS) at build time, never kept in the repository; so do kwok's
# "fast" node and pod stages ($(KWOK_STAGES), its --config), which make
# simulated nodes Ready and simulated pods Running at once.

PEERS_MOD := $(ROOT)/tools/peers/go.mod
peers_version = $(shell awk '{ sub(/^require[ \t]+/, "") } $$1 == "$(1)" && $$2 ~ /^v/ { print $$2; exit }' $(PEERS_MOD))

AGENT_SANDBOX_VERSION := $(call peers_version,sigs.k8s.io/agent-sandbox)
KWOK_VERSION          := $(call peers_version,sigs.k8s.io/kwok)
PEERS_CRDS            := $(BIN)/crds/agent-sandbox
KWOK_STAGES           := $(BIN)/kwok-stages.yaml

# module_dir prints where the module cache holds module $(1) at version $(2).
module_dir = cd $(ROOT)/tools/peers && $(GO) mod download -json $(1)@$(2) | awk -F'"' '$$2 == "Dir" { print $$4 }'

.PHONY: tools-peers
tools-peers: tool-agent-sandbox tool-kwok ## Build agent-sandbox's controller (and its CRDs) and kwok into ./bin, for the side-by-side benchmarks

.PHONY: tool-agent-sandbox
tool-agent-sandbox: peers-crds ## Build kubernetes-sigs/agent-sandbox's controller into ./bin and its CRDs into ./bin/crds/agent-sandbox
	@TOOLS_MODULE_DIR=tools/peers $(BUILD_TOOL) agent-sandbox-controller sigs.k8s.io/agent-sandbox/cmd/agent-sandbox-controller $(AGENT_SANDBOX_VERSION) \
		-ldflags '-s -w -X sigs.k8s.io/agent-sandbox/internal/version.gitVersion=$(AGENT_SANDBOX_VERSION) -X sigs.k8s.io/agent-sandbox/internal/version.gitSHA=release'

# peers-crds copies agent-sandbox's CRDs alone (no build: a module download),
# for the driver test that make test-go runs against a real API server.
.PHONY: peers-crds
peers-crds: ## Copy kubernetes-sigs/agent-sandbox's CRDs from the module cache into ./bin/crds/agent-sandbox
	@dir=$$($(call module_dir,sigs.k8s.io/agent-sandbox,$(AGENT_SANDBOX_VERSION))); \
		test -d "$$dir/k8s/crds" || { echo "peers-crds: no k8s/crds in the module at '$$dir'" >&2; exit 1; }; \
		rm -rf $(PEERS_CRDS) && mkdir -p $(PEERS_CRDS) && cp "$$dir"/k8s/crds/*.yaml $(PEERS_CRDS)/ && chmod u+w $(PEERS_CRDS)/*.yaml; \
		printf 'tools: %-28s %s, %d files from the module\n' "agent-sandbox CRDs" "$(AGENT_SANDBOX_VERSION)" "$$(ls $(PEERS_CRDS) | wc -l)"

.PHONY: tool-kwok
tool-kwok: ## Build kwok (simulated nodes and pods against a real API server) into ./bin
	@TOOLS_MODULE_DIR=tools/peers $(BUILD_TOOL) kwok sigs.k8s.io/kwok/cmd/kwok $(KWOK_VERSION) \
		-ldflags '-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$(KWOK_VERSION)'
	@dir=$$($(call module_dir,sigs.k8s.io/kwok,$(KWOK_VERSION))); \
		files="$$dir/kustomize/stage/node/fast/node-initialize.yaml $$(ls "$$dir"/kustomize/stage/pod/fast/pod-*.yaml)"; \
		for f in $$files; do test -f "$$f" || { echo "tool-kwok: no stage $$f in the module" >&2; exit 1; }; done; \
		for f in $$files; do echo '---'; cat "$$f"; done >$(KWOK_STAGES).tmp && mv -f $(KWOK_STAGES).tmp $(KWOK_STAGES); \
		printf 'tools: %-28s %s, %d stages from the module\n' "kwok stages" "$(KWOK_VERSION)" "$$(grep -c '^kind: Stage' $(KWOK_STAGES))"
