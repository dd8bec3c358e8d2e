// Package controller is the claim controller: it binds SandboxClaims to warm
// pods of their SandboxPool, ends them at their deadline, deletes pool pods
// that no pool or claim controls any more (orphans.go), and writes every
// pool's status.
//
// One leader-elected instance runs (in the sandbox-webhook binary). It
// keeps the pool pods, pools, claims and nodes in an informer cache of its
// own and binds a claim without listing anything:
//
//  1. take a claimable warm pod of the pool from the cache (owned by the
//     pool's UID as controller, made by the node agent, injected with a
//     claim nonce), reserved in memory so that concurrent claims never race
//     for it, with one update of the pod conditioned on its resourceVersion:
//     the claim becomes its controller and only owner (so deleting the
//     claim deletes the pod), which is what claims it (pool.State); no
//     label changes, so NetworkPolicy implementations have nothing to
//     recompute;
//  2. POST /claim to the pod's runner, authorized by the per-pod credential
//     only this controller can compute (internal/claimkey), carrying the
//     digest of the claimant's token and the claim's env;
//  3. write the claim's status: Bound, where, until when.
//
// Each step is idempotent, so a new leader finishes what an old one began:
// the pod owned by the claim is found in the cache, and the runner answers
// a repeated claim with the same digest as before. Without a free warm pod
// a claim that allows it gets a cold pod made for it (owned by the claim
// from the start) and is bound when that pod is Ready.
//
// A claimed pod lives no longer than its claim: deleting the claim deletes
// the pod through the garbage collector, and a pod orphaned by deleting the
// claim with --cascade=orphan is deleted by this controller.
package controller
