// Package webhook decides which pods get a sandbox runner and mutates them.
//
// It has three layers, each usable on its own:
//
//   - Decide applies the opt-in rules (pod annotation, namespace label,
//     excluded namespaces, hostNetwork and Windows pods) to a pod and the
//     labels of its namespace.
//   - Mutate is the pure pod mutation: given a decoded pod, the
//     configuration and the image commands looked up for containers without
//     a command, it returns the JSON patch operations that inject the runner.
//     It never re-encodes the pod, so fields this build does not know are
//     kept.
//   - Handler is the admission handler served at Path; it reads namespaces
//     from an informer cache, looks up image entrypoints through the
//     entrypoint package, and turns refusals into denied admissions whose
//     message names the key at fault.
//
// Server serves it: controller-runtime's webhook server with an HTTP server
// of its own, whose connections Drain counts, so that a stopping replica
// waits until the API server has left it (Drain.After) rather than close a
// connection the API server may be writing an admission on.
//
// cmd/sandbox-webhook wires them into a controller-runtime manager.
package webhook
