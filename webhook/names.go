package webhook

// Names of what the mutation adds to a pod. The chart's guard policy and the
// documentation refer to them, so they are part of the contract. The runner's
// own contract (its port, port name, probe paths and default token Secret)
// lives in runner/api: the first wrapped container's runner port is named
// api.PortName, further ones api.PortName and their position (see portName).
const (
	// VolumeName is the volume that holds the runner binary.
	VolumeName = "sandbox-runner"
	// InitContainerName is the init container that installs the runner into
	// VolumeName.
	InitContainerName = "sandbox-runner-install"
	// MountPath is where VolumeName is mounted, read-only, in wrapped
	// containers (and read-write in the init container).
	MountPath = "/.sandbox-runner"
	// RunnerPath is the runner binary inside wrapped containers.
	RunnerPath = MountPath + "/sandbox-runner"
	// ImageRunnerPath is the runner binary inside the runner image.
	ImageRunnerPath = "/sandbox-runner/sandbox-runner"
	// ImageRunnerDir is the runner image's directory that an image volume
	// mounts at MountPath (image volumes only mount directories).
	ImageRunnerDir = "sandbox-runner"
	// TokenVolumeName is the optional Secret volume with the API token.
	TokenVolumeName = "sandbox-runner-token"
	// TokenMountPath is where TokenVolumeName is mounted.
	TokenMountPath = "/.sandbox-runner-token"
	// Path is the URL path the admission handler is served at.
	Path = "/mutate-v1-pod"
)

// runnerUID is the numeric non-root user of the init container; it matches
// the user of the runner image.
const runnerUID int64 = 65532
