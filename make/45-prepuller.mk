# The node pre-puller library (prepuller/): pulls through the CRI image
# service. Its tests start their own containerd (bin/containerd from
# `make tools`) and a loopback registry; test-go already runs them.

BENCH_PARTS += bench-prepuller

.PHONY: test-prepuller
test-prepuller: ## Pre-puller tests alone (-race, verbose): plan arithmetic, then Sync against a real containerd
	$(GO) test -race -count=1 -timeout 10m -v ./prepuller/... | grep -E '^(=== RUN|--- |\s+\S+_test\.go:|PASS|FAIL|ok )'

.PHONY: bench-prepuller
bench-prepuller: ## Pre-pull throughput of Puller.Sync vs direct CRI pulls in the same run (puller/direct ratio, target >= 0.9)
	$(GO) test -count=1 -run '^$$' -bench '^BenchmarkPrePull$$' -benchtime 10x ./prepuller | grep -E '^(Benchmark|ok|FAIL)'
