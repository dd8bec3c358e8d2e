// Package v1alpha1 is the shared vocabulary of sandbox-injector: every
// sandbox.io/* annotation and label key, the values each one allows, and
// their defaults. The webhook, the node agent, the chart tests and sandboxctl
// import it; the runner does not (it stays free of Kubernetes libraries) and
// gets its settings from its command line instead.
//
// The SandboxPool custom resource will live here too, once the node agent
// needs it.
package v1alpha1
