// Package claim is the thin Go client of SandboxClaims (api/v1alpha1): it
// asks for a sandbox of a warm pool, waits until the claim controller has
// bound it, and drives the sandbox's runner with a token only the claimant
// holds. It is what sandboxctl uses; programs use it to get a sandbox in
// tens of milliseconds instead of the seconds a new pod takes.
//
// Client.Claim generates a random token, creates a SandboxClaim that
// carries only the token's SHA-256 (spec.auth.tokenSHA256), watches it until
// it is Bound, Failed or Expired, and returns the Sandbox: the runner's
// address and a runner client holding the token. Deleting the claim
// (Client.Release) releases the sandbox; Client.Extend raises its lifetime.
// The binding itself (which pod, the runner's POST /claim) is the claim
// controller's work (package claim/controller), so a claimant needs RBAC on
// sandboxclaims only, plus pods/proxy to reach the runner through the API
// server (TransportProxy) when it cannot reach pod IPs.
package claim
