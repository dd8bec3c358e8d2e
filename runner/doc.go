// Package runner is the sandbox runner: the static program that the
// sandbox-injector webhook makes the entrypoint of a wrapped container.
//
// It owns four things, all on the standard library so that the binary
// stays small, static and free of Kubernetes libraries:
//   - the supervisor (Run): starts the container's original command in its own
//     process group, forwards signals to it, kills the group after a grace
//     period, reaps orphans as PID 1 or child subreaper, and in wrap mode
//     exits with the command's exit code; as pod-controller and the kubelet
//     do, it restarts the command in place by its restart policy with the
//     CrashLoopBackOff decay (restart.go), probes its liveness with a
//     Kubernetes Probe (probe.go) and keeps one healthy bit that /status,
//     /readyz and the metrics report;
//   - the HTTP API (Server): /healthz, /readyz, /status, /metrics, /execute
//     and /files, behind a bearer token re-read from a file when it changes,
//     and /claim, which hands a warm sandbox to its claimant once: a fresh
//     token replaces the file's, and the claimant's environment is added to
//     every later /execute;
//   - the file store, confined to the work directory with os.Root;
//   - Install, which copies the running executable into a shared volume.
//
// cmd/sandbox-runner wires it to flags. The wire types live in runner/api and
// a Go client in runner/client (used by e2e, the node agent and sandboxctl).
package runner
