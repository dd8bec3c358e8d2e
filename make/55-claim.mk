# Adoption of warm sandboxes: package claim (the Go client) and sandboxctl
# (cmd/sandboxctl, built by `make build` with every other binary). Their
# integration tests start a real kube-apiserver (envtest) and real runners on
# loopback; test-go already runs them. The e2e tests drive bin/sandboxctl,
# so `make e2e` builds it first.

.PHONY: sandboxctl
sandboxctl: ## Build bin/sandboxctl, the CLI that claims, drives and releases sandboxes, and its kubectl plugin names (bin/kubectl-sandbox, bin/kubectl_complete-sandbox)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/sandboxctl ./cmd/sandboxctl
	ln -sf sandboxctl $(BIN)/kubectl-sandbox
	ln -sf sandboxctl $(BIN)/kubectl_complete-sandbox

e2e: sandboxctl

.PHONY: test-claim
test-claim: ## Claim protocol and sandboxctl tests alone (-race, verbose): 20 racing claimers, tokens, cold fallback, the CLI
	$(GO) test -race -count=1 -timeout 10m -v ./claim/... ./cmd/sandboxctl/... | grep -E '^(=== RUN|--- |\s+--- |\s+\S+_test\.go:|PASS|FAIL|ok )'
