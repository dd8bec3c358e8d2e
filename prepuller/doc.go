// Package prepuller keeps a node's images present by pulling them through
// the node's CRI image service (the container runtime's socket), so that
// pods that need them start without a pull.
//
// A Puller is given the desired set on every Sync: it lists the images the
// runtime has, pulls the missing ones with bounded concurrency, retries a
// failed image after a per-image exponential backoff with jitter
// (client-go's flowcontrol.Backoff, on the Puller's clock; never
// dropping it), pulls a tag again once its refresh interval has passed (so
// a moved tag is followed), pulls again an image the kubelet's garbage
// collector removed, and pauses while the image filesystem is used above a
// threshold. Status reports each desired image as present, pulling, failed
// (with the runtime's error, which carries the registry's) or paused, and
// Prometheus metrics count pulls and bytes.
//
// Credentials for an image come from the dockerconfigjson pull secrets that
// reference it (AuthFor), matched to the registry as the kubelet does.
//
// The node agent (cmd/sandbox-agent, agent/) is its caller: it computes the
// desired set (the chart's list, the runner image, the warm pools' images),
// calls Sync periodically and on change, and publishes Status on the Node.
package prepuller
