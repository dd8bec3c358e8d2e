// Package agent is the node agent's logic: one agent runs on every node (a
// DaemonSet) next to the node's container runtime.
//
// It holds three parts. ImageVolumeLabeler asks the runtime its version
// over the CRI and keeps the node's sandbox.io/image-volume label current,
// with an Event when it changes; the webhook's "auto" injection method reads
// that label.
//
// PrePuller is the pre-pull loop around package prepuller's Puller, a
// reconciler with one key, its node (SetupWithManager): the desired set (Desired: the chart's list from a watched ConfigMap, read by
// ParseImageList; the runner image; the SandboxPools' images; the images a
// Learner saw in injected pods), pull secrets (ResolveAuth), a Sync on every
// change and periodically (RequeueAfter), and the outcome on the Node
// (Events on changes, the v1alpha1.AnnotationPrePull summary line).
//
// Every Event goes through an events.k8s.io recorder (the manager's
// GetEventRecorder, as package certs does), which folds repeats into a
// series.
//
// PoolReconciler (SetupPools) keeps the node's warm pods of every
// SandboxPool: PlanPool, a pure function, decides what to create and delete
// from the pool, the node and the pool's pods on it; the reconciler acts on
// it (creations PoolConfig.RefillDelay after the pool was found short, so
// that pod starts stay out of the claims binding, and batched by
// PoolConfig.MaxStarting; deletions conditioned on
// the pod's resourceVersion so a racing claim wins) and sets the node's
// gauges of the pool (PoolMetrics). It writes no pool status: the claim
// controller alone writes the totals, and the agents react to a pool's spec
// changes only, so a status write wakes none of them.
package agent
