package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
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
	// PriorityClassName of the pool's pods; a low priority lets real
	// workloads preempt warm pods.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
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
