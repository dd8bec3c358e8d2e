// Package startupbench is the harness of `make bench-startup`: how long a
// pod takes from its creation to Ready, uninjected (plain), injected with
// the runner copied by an init container (copy), and injected with the
// runner image mounted as an image volume, and where that time goes.
//
// What is measured, per pod, on the local cluster (whose API server,
// kubelet and test share one clock):
//   - marks: when a watch of the pod, and of the namespace's Events, first
//     showed each step (create call returned, each condition True, each
//     container status, each kubelet Event), as an offset from the moment
//     before the create call. Precision: milliseconds plus the watch's
//     delivery; an Event also waits for the kubelet's event recorder;
//   - the kubelet's own timings, read from its /metrics (through the API
//     server's node proxy) before and after each pod started alone: a
//     histogram's _sum grows by exactly that pod's observation, so the
//     difference is that pod's value (pod start from first seen to running,
//     each CRI call, readiness probe failures);
//   - the conditions' lastTransitionTime minus creationTimestamp, which the
//     API stores in whole seconds (so only a cross-check).
//
// The measurement logic (marks to rows, percentiles, the table, the metric
// parser) is here and unit tested; the recorder drives the watches. The e2e
// test that runs it all is TestStartupLatency in e2e/inject (a short smoke
// run by default, the full benchmark with E2E_BENCH=1).
package startupbench
