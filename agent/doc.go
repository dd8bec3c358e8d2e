// Package agent is the node agent's logic: one agent runs on every node (a
// DaemonSet) next to the node's container runtime.
//
// So far it holds the image-volume support signal: ImageVolumeLabeler asks
// the runtime its version over the CRI and keeps the node's
// sandbox.io/image-volume label current, with an Event when it changes; the
// webhook's "auto" injection method reads that label. The pre-puller lives in
// package prepuller; the warm-pool reconciler and the claim protocol are
// still to come.
package agent
