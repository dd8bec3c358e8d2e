# The Go tests of the whole module, with the race detector, against the real
# kube-apiserver and etcd in ./bin (envtest) and the real helm.

TEST_PARTS  += test-go
BENCH_PARTS += bench-webhook

GO_TEST_ENV := KUBEBUILDER_ASSETS=$(BIN) HELM=$(BIN)/helm

# The chart's Go tests run in helm-test (make/40-chart.mk), the e2e suites
# in e2e (make/50-cluster.mk) and the security suite in test-security
# (make/65-security.mk); here they would only skip or run twice.
GO_TEST_PKGS = $(shell $(GO) list ./... | grep -v -e '/charts$$' -e '/e2e$$' -e '/e2e/inject$$' -e '/security$$')

.PHONY: test-go
test-go: tools-envtest tool-containerd peers-crds ## Unit and integration tests (-race), with a real kube-apiserver, etcd and containerd
	$(GO_TEST_ENV) $(GO) test -race -count=1 -timeout 20m $(GO_TEST_PKGS)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 30s)
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s}; \
		done; done

.PHONY: bench-webhook
bench-webhook: tools-envtest ## Webhook benchmarks: in-process mutation vs a diff-based patch, the HTTP path and its CPU profile, HTTPS admissions vs a no-op webhook
	@echo "== webhook: in-process admission (BenchmarkMutate) vs diff-based patch (BenchmarkCreatePatch)"
	@$(GO) test -run '^$$' -bench 'BenchmarkMutate|BenchmarkCreatePatch' -benchmem -benchtime 3000x ./webhook \
		| awk '/^Benchmark/ { n = $$1; sub(/-[0-9]+$$/, "", n); t[n] = $$3; printf "%-36s %12s ns/op %10s B/op %8s allocs/op\n", n, $$3, $$7, $$9 } \
		END { for (s in t) if (s ~ /^BenchmarkMutate/) { b = s; sub(/Mutate/, "CreatePatch", b); if (t[b] > 0) printf "ratio %-30s diff-based / ours = %.1fx\n", s, t[b] / t[s] } }'
	@echo "== webhook: one admission through the HTTP handler, TLS and HTTP/2 aside (BenchmarkServeHTTP): a no-op vs ours"
	@$(GO) test -run '^$$' -bench 'BenchmarkServeHTTP' -benchmem -benchtime 3000x ./webhook \
		| awk '/^Benchmark/ { n = $$1; sub(/-[0-9]+$$/, "", n); sub(/^BenchmarkServeHTTP\//, "", n); t[n] = $$3; b[n] = $$5; a[n] = $$7; \
			printf "%-36s %12s ns/op %10s B/op %8s allocs/op\n", n, $$3, $$5, $$7 } \
		END { if (t["noop"] > 0) printf "%-36s %12d ns/op %10d B/op %8d allocs/op\n", "ours - noop", t["ours"] - t["noop"], b["ours"] - b["noop"], a["ours"] - a["noop"] }'
	@echo "== webhook: where ours spends its CPU in that path (pprof -top -cum, runtime and test frames hidden)"
	@d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
		$(GO) test -run '^$$' -bench 'BenchmarkServeHTTP/ours$$' -benchtime 20000x -cpuprofile $$d/cpu.out -o $$d/webhook.test ./webhook >/dev/null && \
		$(GO) tool pprof -top -cum -nodecount=16 -focus 'LimitRequests' -hide '^runtime\.|^testing\.|HandlerFunc.ServeHTTP|BenchmarkServeHTTP|inline' \
			$$d/webhook.test $$d/cpu.out 2>/dev/null | sed -n '/flat%/,$$p'
	@SANDBOX_BENCH_LOAD=1 $(GO_TEST_ENV) $(GO) test -count=1 -run '^TestAdmissionLoad$$' -v ./webhook | grep -v -E '^(=== RUN|--- PASS|PASS|ok )'
