// Package claimbench is the harness of `make bench-claim`: the side-by-side
// claim latency of our SandboxClaim controller and kubernetes-sigs/
// agent-sandbox's (SandboxTemplate + SandboxWarmPool + SandboxClaim), on the
// same local cluster, from warm pools of the same image.
//
// What is measured:
//   - ours: a SandboxClaim created until the first /execute of the claimed
//     sandbox answers (through the Go claim package), warm sequential, warm
//     in a burst of parallel claims, and cold (no warm pod free);
//   - agent-sandbox: a SandboxClaim created until its Ready condition is
//     True (its runtime image is not available here, so there is no command
//     to run), warm sequential and in a burst;
//   - the API server's floor: a claimant's three dependent writes alone (a
//     ConfigMap created and updated twice), at the moments ours run, printed
//     beside ours and not a goal.
//
// The measurement logic (percentiles, the table, the goals) is here and
// unit tested, the machine's CPU use by command in internal/cpuacct;
// driving agent-sandbox's controller and objects is in agentsandbox.go. The e2e test that runs it all is TestBenchClaim in
// e2e/inject (gated by E2E_BENCH=1).
package claimbench
