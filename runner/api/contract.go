package api

// The runner's contract with the components that start and call it: where it
// listens, how its pod names that port, where its token comes from and the
// paths it answers. The webhook writes these into pods, the claim controller,
// the network policies and the clients dial them, and the runner serves them;
// each is defined here once, in the package the runner can import.

// Defaults of the runner's address and credentials.
const (
	// DefaultPort is the TCP port of the runner's API when nothing else is
	// said: the runner's --listen default and the webhook's --runner-port
	// default (the chart's runner.port).
	DefaultPort = 7080
	// DefaultListen is the runner's --listen default: DefaultPort on every
	// interface.
	DefaultListen = ":7080"
	// PortName is the name of the container port the webhook gives the
	// runner of a pod's first wrapped container; the claim controller and the
	// pool network policies find the runner by it.
	PortName = "sandbox-runner"
	// DefaultTokenSecret is the Secret, in a pod's namespace, whose "token"
	// key holds the API token when the pod names none: the webhook's
	// --token-secret default (the chart's runner.tokenSecretName).
	DefaultTokenSecret = "sandbox-runner-token"
)

// Paths of the runner's API (openapi.yaml describes each).
const (
	// PathHealthz answers 200 while the runner serves; open to everyone, for
	// the kubelet's probes.
	PathHealthz = "/healthz"
	// PathReadyz answers 200 while the runner serves and its command is
	// as healthy as its mode and restart policy expect, else 503; open to
	// everyone, the readiness probe the webhook adds.
	PathReadyz = "/readyz"
	// PathStatus answers a Status.
	PathStatus = "/status"
	// PathMetrics answers the runner's Prometheus metrics.
	PathMetrics = "/metrics"
	// PathExecute runs an ExecuteRequest.
	PathExecute = "/execute"
	// PathClaim takes a ClaimRequest, once, on a warm pool pod.
	PathClaim = "/claim"
	// PathFiles lists the work directory; PathFiles + "/" + a relative path
	// reads, writes or deletes one file.
	PathFiles = "/files"
)
