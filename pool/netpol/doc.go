// Package netpol keeps one NetworkPolicy per SandboxPool (api/v1alpha1) for
// the pool's pods: egress denied but DNS and the pool's allow list (or all
// allowed, as the pool says in spec.network), and ingress only to the
// runner port, only from the claim controller and the sources the chart
// names. The policy is owned by its pool, so it goes away with it.
//
// The sandbox-webhook binary runs the reconciler (Setup); the pool package
// says what the pods it selects look like.
package netpol
