// Package inject is the end-to-end proof of the injector on the real local
// cluster (`make e2e`): it installs the Helm chart with the images the
// project built into the local registry, and drives real pods through the
// API server, the webhook, the kubelet and the runner.
//
// Like the rest of e2e/, it runs only with SANDBOX_E2E=1 and KUBECONFIG set
// (make e2e sets both) and skips loudly otherwise.
package inject
