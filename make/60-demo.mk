# make demo: the main job on the embedded local cluster.

.PHONY: demo
demo: cluster-up sandboxctl ## Bring up the local cluster, install the chart, run a command in an injected pod, claim a warm sandbox
	@$(MAKE) --no-print-directory images IMAGE_PLATFORMS='$(E2E_IMAGE_PLATFORMS)' VERSION=$(VERSION) IMAGE_TAG=$(IMAGE_TAG)
	@IMAGE_TAG=$(IMAGE_TAG) $(cluster_env) $(ROOT)/e2e/demo.sh

# make test runs the end-to-end suite whenever this machine can host the local
# cluster (it needs root for containerd, iptables and mounts). Where it cannot,
# or with SANDBOX_SKIP_E2E=1, it says so loudly instead of failing.
TEST_PARTS += test-e2e

.PHONY: test-e2e
test-e2e: ## The e2e suite when the local cluster can run here; a loud skip otherwise
	@if [ "$$(id -u)" != 0 ] || [ "$${SANDBOX_SKIP_E2E:-}" = 1 ]; then \
		echo; echo "################################################################"; \
		echo "## SKIPPING THE END-TO-END SUITE: $$( [ "$$(id -u)" != 0 ] && echo 'not root (the local cluster needs root)' || echo 'SANDBOX_SKIP_E2E=1')"; \
		echo "## make test covered unit, integration and chart tests only."; \
		echo "################################################################"; echo; \
	else $(MAKE) --no-print-directory e2e VERSION=$(VERSION); fi
