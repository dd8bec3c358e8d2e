package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SandboxClaim asks for one sandbox of a pool. The claim controller binds it
// to a warm pod of the pool (or, when allowed, a cold one made for it),
// hands the pod's runner to the claimant's token and says where it is in
// Status. Deleting the claim releases the sandbox: the bound pod has the
// claim as its controller owner and goes with it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sbc,categories=sandbox
// +kubebuilder:printcolumn:name="Pool",type=string,JSONPath=`.spec.poolName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Pod",type=string,JSONPath=`.status.podName`
// +kubebuilder:printcolumn:name="Origin",type=string,JSONPath=`.status.origin`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SandboxClaim struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SandboxClaimSpec   `json:"spec"`
	Status SandboxClaimStatus `json:"status,omitempty"`
}

// SandboxClaimSpec is what the claimant asks for.
//
// +kubebuilder:validation:XValidation:rule="self.poolName == oldSelf.poolName",message="poolName is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.env) == has(oldSelf.env) && (!has(self.env) || self.env == oldSelf.env)",message="env is immutable"
// +kubebuilder:validation:XValidation:rule="self.auth == oldSelf.auth",message="auth is immutable"
type SandboxClaimSpec struct {
	// PoolName is the SandboxPool, in the claim's namespace, to take a
	// sandbox from.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	PoolName string `json:"poolName"`
	// Env is added to the environment of every command the claimant runs
	// in the sandbox. The runner receives it at the claim; the pod spec
	// never holds it. Anyone who can read the claim can read it: put
	// secrets in files written after the claim instead.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	Env []ClaimEnvVar `json:"env,omitempty"`
	// ActiveDeadlineSeconds is the sandbox's lifetime, counted from when
	// the claim was bound. At its end the controller deletes the pod and
	// the claim becomes Expired. Raising it extends the sandbox; unset
	// means no deadline. At most 9223372036 (292 years, the longest
	// duration the controller computes with).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9223372036
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`
	// ColdStart says whether a pod may be created for the claim when no
	// warm pod of the pool is free: Allow (default) or Never (the claim
	// fails with reason NoWarmPod).
	// +optional
	// +kubebuilder:default=Allow
	ColdStart ColdStartPolicy `json:"coldStart,omitempty"`
	// Auth is how the claimant proves itself to the sandbox's runner once
	// it is bound. The usable token is never stored in the claim.
	Auth ClaimAuth `json:"auth"`
}

// ClaimEnvVar is one environment variable of a claim.
type ClaimEnvVar struct {
	// Name of the variable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^[^=\x00]+$`
	Name string `json:"name"`
	// Value of the variable.
	// +optional
	Value string `json:"value,omitempty"`
}

// ColdStartPolicy says whether a claim may get a pod made for it.
// +kubebuilder:validation:Enum=Allow;Never
type ColdStartPolicy string

// Values of SandboxClaimSpec.ColdStart.
const (
	ColdStartAllow ColdStartPolicy = "Allow"
	ColdStartNever ColdStartPolicy = "Never"
)

// ClaimAuth names the token the runner accepts once the claim is bound:
// exactly one of TokenSHA256 and SecretRef.
//
// +kubebuilder:validation:XValidation:rule="has(self.tokenSHA256) != has(self.secretRef)",message="set exactly one of tokenSHA256 and secretRef"
type ClaimAuth struct {
	// TokenSHA256 is the SHA-256, in lower-case hex, of a token the claimant
	// generated (at least 16 bytes; the Go and Python clients use 32 random
	// bytes). The runner accepts that token, and only it, after the claim.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	TokenSHA256 string `json:"tokenSHA256,omitempty"`
	// SecretRef names a Secret in the claim's namespace that the claimant
	// made, holding the token under the key "token". The controller reads
	// it once, at binding, and gives the runner only its digest.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
}

// SecretReference names a Secret in the claim's namespace.
type SecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// ClaimPhase is where a claim is in its life.
// +kubebuilder:validation:Enum=Pending;Bound;Failed;Expired
type ClaimPhase string

// Values of SandboxClaimStatus.Phase.
const (
	// ClaimPending: not bound yet (waiting for a cold pod, or not seen by
	// the controller yet).
	ClaimPending ClaimPhase = "Pending"
	// ClaimBound: the sandbox is the claimant's; Status says where.
	ClaimBound ClaimPhase = "Bound"
	// ClaimFailed: the claim cannot be bound (the Bound condition says
	// why); it is deleted after the controller's finished TTL.
	ClaimFailed ClaimPhase = "Failed"
	// ClaimExpired: the lifetime ended and the sandbox was deleted.
	ClaimExpired ClaimPhase = "Expired"
)

// Origin says where a claim's pod came from.
// +kubebuilder:validation:Enum=Warm;Cold
type Origin string

// Values of SandboxClaimStatus.Origin.
const (
	OriginWarmPod Origin = "Warm"
	OriginColdPod Origin = "Cold"
)

// ConditionBound is the condition type of a claim that says whether it is
// bound and, when not, why.
const ConditionBound = "Bound"

// Reasons of the Bound condition.
const (
	// ReasonBound: bound to a pod whose runner took the claimant's token.
	ReasonBound = "Bound"
	// ReasonWaitingForPod: a cold pod was made for the claim and is
	// starting.
	ReasonWaitingForPod = "WaitingForPod"
	// ReasonNoWarmPod: no warm pod was free and the claim forbids a cold
	// start.
	ReasonNoWarmPod = "NoWarmPod"
	// ReasonPoolNotFound: the pool does not exist in the claim's namespace.
	ReasonPoolNotFound = "PoolNotFound"
	// ReasonSecretInvalid: spec.auth.secretRef names a Secret that does not
	// exist or holds no usable token.
	ReasonSecretInvalid = "SecretInvalid"
	// ReasonRunnerRefused: the runner of the pod did not take the claim.
	ReasonRunnerRefused = "RunnerRefused"
	// ReasonRunnerOutdated: the warm pod the claim took runs an older
	// runner that speaks another claim protocol than the controller (a
	// rollout in progress); the pod was let go and the claim waits, still
	// Pending, for a warm pod of the current runner or a cold pod.
	ReasonRunnerOutdated = "RunnerOutdated"
	// ReasonColdStartFailed: the cold pod did not become Ready in time.
	ReasonColdStartFailed = "ColdStartFailed"
	// ReasonPodLost: the bound pod disappeared.
	ReasonPodLost = "PodLost"
	// ReasonExpired: the lifetime ended; the pod was deleted.
	ReasonExpired = "Expired"
)

// SandboxClaimStatus is where the claimant's sandbox is.
type SandboxClaimStatus struct {
	// Phase is Pending, Bound, Failed or Expired.
	// +optional
	Phase ClaimPhase `json:"phase,omitempty"`
	// PodName is the bound pod, in the claim's namespace.
	// +optional
	PodName string `json:"podName,omitempty"`
	// NodeName is the node of the bound pod.
	// +optional
	NodeName string `json:"nodeName,omitempty"`
	// PodIP is the bound pod's IP.
	// +optional
	PodIP string `json:"podIP,omitempty"`
	// RunnerPort is the port of the pod's runner API.
	// +optional
	RunnerPort int32 `json:"runnerPort,omitempty"`
	// Origin is Warm (taken from the pool's warm pods) or Cold (made for
	// the claim).
	// +optional
	Origin Origin `json:"origin,omitempty"`
	// BoundAt is when the runner took the claimant's token.
	// +optional
	BoundAt *metav1.Time `json:"boundAt,omitempty"`
	// ExpiresAt is when the lifetime ends (BoundAt plus
	// spec.activeDeadlineSeconds).
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// ObservedGeneration is the claim generation the controller last acted
	// on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions of the claim: Bound.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Finished reports whether the claim reached a phase it never leaves.
func (s *SandboxClaimStatus) Finished() bool {
	return s.Phase == ClaimFailed || s.Phase == ClaimExpired
}

// ColdStartAllowed reports whether the claim may get a cold pod.
func (s *SandboxClaimSpec) ColdStartAllowed() bool {
	return s.ColdStart != ColdStartNever
}

// SandboxClaimList is a list of SandboxClaims.
//
// +kubebuilder:object:root=true
type SandboxClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SandboxClaim `json:"items"`
}

func init() {
	SchemeBuilder.Register(&SandboxClaim{}, &SandboxClaimList{})
}
