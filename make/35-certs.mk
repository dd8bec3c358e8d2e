# Self-managed serving certificates (certs/, sandbox-webhook --cert-mode=self).
# test-go already runs these tests; these targets run them alone, verbosely,
# so the rotation proof's counts (pods created vs admitted) are printed.

.PHONY: test-certs
test-certs: tools-envtest ## Certificate tests alone: unit, racing replicas, corrupt Secrets, rotation under a 100 ms pod loop (prints created vs admitted)
	KUBEBUILDER_ASSETS=$(BIN) $(GO) test -race -count=1 -timeout 10m -v ./certs/... ./cmd/sandbox-webhook \
		| grep -E '^(=== RUN|--- |\s+\S+_test\.go:|PASS|FAIL|ok )'

.PHONY: fuzz-certs
fuzz-certs: ## Fuzz the certificate Secret and bundle PEM parsing (FUZZTIME, default 30s)
	$(GO) test ./certs -run '^$$' -fuzz '^FuzzParseBundle$$' -fuzztime $${FUZZTIME:-30s}
