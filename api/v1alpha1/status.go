package v1alpha1

// InjectionStatus is the value of AnnotationStatus, stored as JSON.
type InjectionStatus struct {
	// State is StatusInjected once the pod has been mutated.
	State string `json:"state"`
	// RunnerVersion is the version of the runner image that was injected.
	RunnerVersion string `json:"runnerVersion,omitempty"`
	// RunnerImage is the runner image reference that was injected, as the
	// chart names it (tag, digest or both). The node agent replaces a warm
	// pod whose RunnerImage is not the chart's current one; pods injected
	// before this field existed have none and count as outdated.
	RunnerImage string `json:"runnerImage,omitempty"`
	// Method is how the runner reaches the containers: MethodCopy or
	// MethodImageVolume.
	Method string `json:"method,omitempty"`
	// Containers are the wrapped containers, in pod order.
	Containers []string `json:"containers,omitempty"`
	// Warnings say what could not be done as asked, for example a
	// container whose original command could not be rebuilt and whose
	// runner therefore has no child.
	Warnings []string `json:"warnings,omitempty"`
}

// StatusInjected is InjectionStatus.State of an injected pod.
const StatusInjected = "injected"

// Injection methods.
const (
	// MethodAuto chooses MethodImageVolume where the pod's node, or every
	// node, is known to support image volumes, and MethodCopy otherwise.
	MethodAuto = "auto"
	// MethodCopy copies the runner into an emptyDir with an init container.
	MethodCopy = "copy"
	// MethodImageVolume mounts the runner image as a read-only image volume.
	MethodImageVolume = "imageVolume"
)
