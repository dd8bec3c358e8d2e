# The sandbox runner: the static binary injected into wrapped containers.
# HTTP/2 is left out of net/http (the API is HTTP/1.1), and crypto uses its
# portable Go code instead of assembly (purego: the runner serves plain HTTP,
# TLS only for an HTTPS liveness probe), which keeps the stripped binary
# under 6 MiB.

RUNNER_TAGS    := nethttpomithttp2,purego
RUNNER_BENCH   := $(ROOT)/_out/bench-runner.txt

.PHONY: build-runner
build-runner: ## Build the static, stripped sandbox-runner into ./bin (the shipped form)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -tags $(RUNNER_TAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/sandbox-runner ./cmd/sandbox-runner

.PHONY: test-runner
test-runner: ## Runner unit and process tests only (race detector)
	$(GO) test -race -count=1 ./runner/... ./cmd/sandbox-runner/...

.PHONY: fuzz-runner
fuzz-runner: ## Fuzz the runner's request decoding, liveness probe flag and path handling (30s each)
	$(GO) test ./runner/api -run '^$$' -fuzz FuzzDecodeExecuteRequest -fuzztime 30s
	$(GO) test ./runner/api -run '^$$' -fuzz FuzzDecodeClaimRequest -fuzztime 30s
	$(GO) test ./runner/api -run '^$$' -fuzz FuzzParseProbe -fuzztime 30s
	$(GO) test ./runner -run '^$$' -fuzz FuzzResolvePath -fuzztime 30s

.PHONY: bench-runner
bench-runner: build-runner ## Runner benchmarks beside direct fork-exec and file copy, as one table
	@mkdir -p $(dir $(RUNNER_BENCH))
	$(GO) test -run '^$$' -bench 'ExecuteTrue' -benchtime 2000x ./cmd/sandbox-runner | tee $(RUNNER_BENCH)
	$(GO) test -run '^$$' -bench 'PlainFileCopy|Upload|Download' -benchtime 5x ./cmd/sandbox-runner | tee -a $(RUNNER_BENCH)
	$(GO) test -run '^$$' -bench 'OutputMemory' -benchtime 1x ./cmd/sandbox-runner | tee -a $(RUNNER_BENCH)
	@echo
	@$(GO) run ./runner/internal/benchreport -binary $(BIN)/sandbox-runner < $(RUNNER_BENCH)

BENCH_PARTS += bench-runner
