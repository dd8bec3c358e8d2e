// Package pool says what the pods of a SandboxPool (api/v1alpha1) look like:
// the warm pod an agent keeps bound to its node, the cold pod a claim
// creates when no warm pod is claimable, the digest that tells a pod made
// from an older template, and which pods a claim may take.
//
// Both the node agent (package agent), which creates and counts warm pods,
// and the claim protocol (package claim), which adopts them or falls back to
// a cold pod, build pods here, so the two never disagree.
package pool
