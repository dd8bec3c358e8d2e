# Proof side by side with kubernetes-sigs/agent-sandbox (issue 12): the claim
# latency on the local cluster (bench-claim) and the scale simulation with
# kwok (bench-peers-scale). The peers' programs are built by
# make/12-peers-tools.mk; the harnesses are e2e/claimbench and e2e/scale.

BENCH_PARTS += bench-claim
.PHONY: bench-claim
bench-claim: tool-agent-sandbox ## On the local cluster, one run: our warm claims (50 sequential, a burst of 20) and a cold one to first /execute, beside agent-sandbox v1.0.1's SandboxClaim to Ready and the API server's floor (three dependent writes); fails when a goal is missed
	E2E_BENCH=1 AGENT_SANDBOX_BIN=$(BIN)/agent-sandbox-controller AGENT_SANDBOX_CRDS=$(PEERS_CRDS) \
		$(MAKE) e2e E2E_RUN='^TestBenchClaim$$'

# Not part of `make bench`: it needs no cluster but takes minutes of both
# cores. SANDBOX_SCALE_NODES, _POOL, _FEW_NODES, _SMALL_POOL, _COST_CLAIMS
# shrink it for a quick look.
.PHONY: bench-peers-scale
bench-peers-scale: tools-envtest tools-peers ## Scale by simulation (kwok, real kube-apiserver + etcd, 100 nodes, 2,000 warm pods): claims/s, API requests, bytes and watch events per claim, ours beside agent-sandbox v1.0.1
	SANDBOX_SCALE=1 KUBEBUILDER_ASSETS=$(BIN) $(GO) test -count=1 -timeout 12m -v -run '^TestScale$$' ./e2e/scale/
