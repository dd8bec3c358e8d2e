# The security suite (package security): every known attack replayed on the
# real runner binary, the webhook's admission handler and image lookups, and
# the certificate rotator against a real kube-apiserver. It prints one line
# per attack that succeeded and "attacks tried: N, refused: M", and fails if
# any attack succeeded. test-go leaves the package to this target.

TEST_PARTS += test-security

.PHONY: test-security
test-security: tools-envtest ## Replay every known attack on the real runner, webhook and API server; prints attacks tried and refused
	@mkdir -p $(ROOT)/_out
	@status=0; $(GO_TEST_ENV) $(GO) test -race -count=1 -timeout 10m -v ./security/... > $(ROOT)/_out/test-security.log 2>&1 || status=$$?; \
		grep -E '^(--- FAIL|\s+--- FAIL|\s+\S+_test\.go:|SUCCEEDED|attacks tried|PASS|FAIL|ok )' $(ROOT)/_out/test-security.log; \
		if [ $$status -ne 0 ]; then echo "test-security: failed (whole log: _out/test-security.log)"; fi; exit $$status
