// Package scale is the scale simulation of issue 12 (`make
// bench-peers-scale`): a real kube-apiserver and etcd (envtest), kwok
// simulating 100 nodes and the pods on them, thousands of warm pods, and a
// claim controller — ours in-process, then kubernetes-sigs/agent-sandbox's
// as a process — measured from outside:
//
//   - claims per second sustained with claim-to-bound p99 under 100 ms;
//   - API requests and bytes read by the controller per claim, at 200 and
//     at 2,000 warm pods (they must not grow with the pool);
//   - watch events the API server sends per claim, at 10 and at 100 nodes
//     (they must not grow with the nodes).
//
// Requests and bytes are counted by a reverse proxy on loopback that the
// controller under test (and nothing else) talks to the API server through
// (CountingProxy); watch events by the API server's own
// apiserver_watch_events_total.
//
// Network safety: kwok gives simulated pods addresses from a pod CIDR
// inside 10.244.0.0/16 that nothing serves. The controller reaches their
// "runners" only through internal/simnet's Dialer, which maps each
// simulated pod's address to a fake runner on 127.0.0.1 and refuses every
// other address before a socket is opened; no packet to a simulated address
// is ever sent.
//
// The simulation runs only with SANDBOX_SCALE=1 (make bench-peers-scale);
// otherwise its test skips and `go test` runs only the unit tests of the
// pieces.
package scale
