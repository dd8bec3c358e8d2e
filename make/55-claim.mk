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

BENCH_PARTS += bench-claim-controller
.PHONY: bench-claim-controller
bench-claim-controller: tools-envtest ## Claim to first /execute on envtest (real API server, controller, runners; no kubelet), sequential and a burst of 20, beside the same count of bare API writes in the same run, and the CPU time per claim that bounds a burst
	@echo "== claims on envtest: claim created to first /execute, beside three dependent API writes per claimant (the floor); CPU per claim of this test and its children"
	@$(GO_TEST_ENV) $(GO) test -count=1 -run '^$$' -bench '^BenchmarkClaimToExecute$$' -benchtime 5x ./claim/controller/ \
		| awk -v cores=$$(nproc) '/^Benchmark/ { n = $$1; sub(/^BenchmarkClaimToExecute\//, "", n); sub(/-[0-9]+$$/, "", n); \
			for (i = 3; i < NF; i++) { v = $$i; u = $$(i+1); if (u == "p50-ms") p50[n] = v; if (u == "p99-ms") p99[n] = v; \
				if (u == "cpu-ms/claim") cpu[n] = v; if (u == "apiserver-cpu-ms/claim") api[n] = v; if (u == "etcd-cpu-ms/claim") etcd[n] = v; if (u == "runner-cpu-ms/claim") run[n] = v }; \
			printf "%-28s p50 %8.1f ms   p99 %8.1f ms   CPU %5.1f ms per claim (API server %.1f, etcd %.1f, runners %.1f)\n", n, p50[n], p99[n], cpu[n], api[n], etcd[n], run[n] } \
			END { for (k in p50) if (k !~ /^writes-only/) { f = "writes-only/" k; if (p50[f] > 0) printf "ratio %-22s ours / API writes alone: p50 %.1fx, p99 %.1fx\n", k, p50[k] / p50[f], p99[k] / p99[f] }; \
				for (k in p50) if (k ~ /parallel=20$$/) printf "bound %-22s 20 x %.1f ms of CPU on %d cores: no such burst ends before %.0f ms\n", k, cpu[k], cores, 20 * cpu[k] / cores }'
