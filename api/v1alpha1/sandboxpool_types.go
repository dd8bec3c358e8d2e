package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SandboxPool keeps warm sandbox pods on every matching node, ready to be
// claimed. Each node's agent keeps its own node at Spec.PodsPerNode (and
// reports its node's counts as metrics); the claim controller alone writes
// Status, the pool's totals.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sbp,categories=sandbox
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.template.image`
// +kubebuilder:printcolumn:name="Per node",type=integer,JSONPath=`.spec.podsPerNode`
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.desired`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Claimed",type=integer,JSONPath=`.status.claimed`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SandboxPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SandboxPoolSpec   `json:"spec"`
	Status SandboxPoolStatus `json:"status,omitempty"`
}

// SandboxPoolSpec is what a pool should hold.
type SandboxPoolSpec struct {
	// Template is the sandbox every pod of the pool runs.
	Template SandboxTemplate `json:"template"`
	// PodsPerNode is how many warm (unclaimed) pods each matching node
	// keeps; 0 keeps none (every claim then creates a cold pod). Unset
	// means 1; read it with WarmPodsPerNode.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=1
	// +optional
	PodsPerNode *int32 `json:"podsPerNode,omitempty"`
	// NodeSelector limits the nodes that keep warm pods of the pool.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations of the pool's pods.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// Affinity of the pool's pods. Its required node affinity also limits
	// the nodes that keep warm pods (like NodeSelector); the scheduler
	// applies all of it to cold pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// PriorityClassName of the pool's pods; a low priority lets real
	// workloads preempt warm pods.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// Network says what the pool's pods may reach; a NetworkPolicy per pool
	// enforces it. Unset: egress denied but DNS.
	// +optional
	Network PoolNetwork `json:"network,omitempty"`
}

// DefaultPodsPerNode is the size of a pool whose PodsPerNode is unset.
const DefaultPodsPerNode int32 = 1

// WarmPodsPerNode is PodsPerNode, or DefaultPodsPerNode when it is unset.
func (s *SandboxPoolSpec) WarmPodsPerNode() int32 {
	if s.PodsPerNode == nil {
		return DefaultPodsPerNode
	}
	return *s.PodsPerNode
}

// SandboxTemplate is the container a sandbox runs. The runner is injected
// by the webhook as for any opted-in pod; the image needs nothing of ours.
type SandboxTemplate struct {
	// Image of the sandbox container.
	// +kubebuilder:validation:MinLength=1
	Image string `json:"image"`
	// Command replaces the image's ENTRYPOINT. Empty (and no Args): the
	// runner serves its API with no child, idle like a pause container
	// (the pods carry sandbox.io/child: none).
	// +optional
	// +listType=atomic
	Command []string `json:"command,omitempty"`
	// Args replace the image's CMD.
	// +optional
	// +listType=atomic
	Args []string `json:"args,omitempty"`
	// Env of the sandbox container; per-claim environment is added at claim
	// time through the runner's API, so a warm pod holds no claimant secret.
	// +optional
	// +listType=map
	// +listMapKey=name
	Env []corev1.EnvVar `json:"env,omitempty"`
	// Resources of the sandbox container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
	// ServiceAccountName of the pool's pods.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// ImagePullSecrets of the pool's pods.
	// +optional
	// +listType=atomic
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// AutomountServiceAccountToken mounts an API token of ServiceAccountName
	// into the pool's pods. Unset means false: code in a sandbox gets no
	// credential of the cluster unless the pool asks for one.
	// +optional
	AutomountServiceAccountToken *bool `json:"automountServiceAccountToken,omitempty"`
	// RuntimeClassName runs the pool's pods under another runtime handler
	// (gVisor, Kata Containers) that the nodes offer.
	// +optional
	RuntimeClassName *string `json:"runtimeClassName,omitempty"`
	// HostUsers false runs the pool's pods in a user namespace of their own
	// (root in the pod is an unprivileged user on the node); the nodes'
	// kernel and runtime must support it. Unset: the node's user namespace.
	// +optional
	HostUsers *bool `json:"hostUsers,omitempty"`
	// PodSecurityContext of the pool's pods. Where neither it nor
	// SecurityContext names a seccomp profile, the pods get RuntimeDefault.
	// The user stays the image's unless it (or SecurityContext) sets one:
	// only a non-root user (RunAsNonRoot) lets the pods meet the Pod
	// Security restricted level, which the pool's PodSecurity condition
	// reports.
	// +optional
	PodSecurityContext *corev1.PodSecurityContext `json:"podSecurityContext,omitempty"`
	// SecurityContext of the sandbox container. What it leaves unset is
	// filled as Pod Security restricted asks: capabilities drop ALL, and
	// allowPrivilegeEscalation false (unless the container is privileged or
	// adds SYS_ADMIN).
	// +optional
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
	// WorkDir gives the sandbox container a work directory of its own: an
	// emptyDir with a size limit, mounted at its path, which becomes the
	// container's working directory and so the runner's (/files and the
	// default cwd of /execute). Unset: the image's WORKDIR, unbounded.
	// +optional
	WorkDir *WorkDir `json:"workDir,omitempty"`
}

// DefaultWorkDirPath is where WorkDir is mounted when its MountPath is empty.
const DefaultWorkDirPath = "/workspace"

// WorkDir is a bounded work directory for the sandbox container.
type WorkDir struct {
	// MountPath of the work directory in the sandbox container; default
	// /workspace.
	// +optional
	// +kubebuilder:validation:Pattern=`^/`
	MountPath string `json:"mountPath,omitempty"`
	// SizeLimit of the work directory; the kubelet evicts a pod that writes
	// more. Required: an unbounded directory is what unset WorkDir is.
	SizeLimit resource.Quantity `json:"sizeLimit"`
	// Medium of the emptyDir: "" (the node's disk) or Memory (counted in
	// the container's memory limit).
	// +optional
	// +kubebuilder:validation:Enum="";Memory
	Medium corev1.StorageMedium `json:"medium,omitempty"`
}

// Path is MountPath, or DefaultWorkDirPath when it is empty.
func (w *WorkDir) Path() string {
	if w.MountPath == "" {
		return DefaultWorkDirPath
	}
	return w.MountPath
}

// Egress is what a pool's pods may reach.
// +kubebuilder:validation:Enum=Deny;Allow
type Egress string

// Values of PoolNetwork.Egress.
const (
	// EgressDeny lets the pods reach only DNS and PoolNetwork.Allow.
	EgressDeny Egress = "Deny"
	// EgressAllow lets the pods reach anything.
	EgressAllow Egress = "Allow"
)

// PoolNetwork is what a pool's pods may reach. DNS (port 53, UDP and TCP) is
// always allowed; the runner port admits only the claim controller and the
// sources the chart names (claims.network.runnerFrom).
type PoolNetwork struct {
	// Egress is Deny (the default: only DNS and Allow) or Allow (anything).
	// +optional
	// +kubebuilder:default=Deny
	Egress Egress `json:"egress,omitempty"`
	// Allow lists what the pods may reach when Egress is Deny.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Allow []EgressRule `json:"allow,omitempty"`
}

// EgressDenied reports whether the pool's egress is denied (the default).
func (n *PoolNetwork) EgressDenied() bool { return n.Egress != EgressAllow }

// EgressRule admits traffic to a CIDR, on some ports or all.
type EgressRule struct {
	// CIDR the pods may reach, such as 10.0.0.0/8 or 192.0.2.7/32.
	// +kubebuilder:validation:MinLength=1
	CIDR string `json:"cidr"`
	// Except are CIDRs inside CIDR that stay unreachable.
	// +optional
	// +listType=atomic
	Except []string `json:"except,omitempty"`
	// Ports on CIDR; empty means every port.
	// +optional
	// +listType=atomic
	Ports []EgressPort `json:"ports,omitempty"`
}

// EgressPort is one port, or a range, of one protocol.
type EgressPort struct {
	// Port number.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// EndPort makes Port..EndPort a range.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	EndPort *int32 `json:"endPort,omitempty"`
	// Protocol is TCP (the default), UDP or SCTP.
	// +optional
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	Protocol corev1.Protocol `json:"protocol,omitempty"`
}

// SandboxPoolStatus is the pool's totals, written by the claim controller
// from its cache (at most about once a second per pool).
type SandboxPoolStatus struct {
	// Desired is how many warm pods the pool should hold: PodsPerNode on
	// every node that keeps pods of the pool.
	// +optional
	Desired int32 `json:"desired,omitempty"`
	// Ready counts the pool's warm pods that can be claimed now.
	// +optional
	Ready int32 `json:"ready,omitempty"`
	// Warm counts the pool's unclaimed pods, Ready or not.
	// +optional
	Warm int32 `json:"warm,omitempty"`
	// Claimed counts the pool's pods bound to claims.
	// +optional
	Claimed int32 `json:"claimed,omitempty"`
	// ObservedGeneration is the pool generation the status was computed
	// for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions of the pool.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// SandboxPoolList is a list of SandboxPools.
//
// +kubebuilder:object:root=true
type SandboxPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SandboxPool `json:"items"`
}

func init() {
	SchemeBuilder.Register(&SandboxPool{}, &SandboxPoolList{})
}
