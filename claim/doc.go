// Package claim adopts sandboxes from warm pools (api/v1alpha1.SandboxPool):
// the Go client behind sandboxctl, for programs that want a sandbox in tens
// of milliseconds instead of the seconds a new pod takes.
//
// A Claimer lists a pool's warm pods, checks that a candidate's runner
// answers, and takes it in one update of the pod conditioned on its
// resourceVersion (label sandbox.io/state warm -> claimed), so that of many
// racing claimers exactly one wins each pod and the others move on to the
// next candidate. The winner then hands the runner a fresh token and the
// claimant's environment through the runner's POST /claim, authorized with
// the pool's token, and keeps the fresh token in a Secret owned by the pod
// (ClaimSecretName) so that a later Open, such as `sandboxctl exec`, finds
// it. When nothing is claimable within Options.Grace, the claim creates a
// cold pod from the pool's template (package pool) and says so in
// Sandbox.Origin. Releasing a sandbox deletes its pod; the node agent
// refills the pool.
//
// A user of this package needs, in the pool's namespace: get and list of
// sandboxpools; list, watch, get, update, create and delete of pods; get of
// the pool's token Secret and create, get and delete of Secrets; and, for
// TransportProxy, create and get of pods/proxy.
package claim
