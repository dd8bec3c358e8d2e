package v1alpha1

import (
	"strings"

	"sandbox.io/injector/runner/api"
)

// Group is the API group and the prefix of every annotation and label key.
const Group = "sandbox.io"

// KeyPrefix starts every sandbox.io annotation and label key.
const KeyPrefix = Group + "/"

// Pod annotations a user may set.
const (
	// AnnotationInject opts a pod in ("true") or out ("false"). The pod's
	// choice wins over its namespace's label.
	AnnotationInject = KeyPrefix + "inject"
	// AnnotationContainers names the containers to wrap, comma-separated.
	// Default: the container named by AnnotationDefaultContainer, else the
	// first container of the pod.
	AnnotationContainers = KeyPrefix + "containers"
	// AnnotationMode chooses how the runner treats the original command:
	// ModeServer (default) or ModeWrap.
	AnnotationMode = KeyPrefix + "mode"
	// AnnotationTokenSecret names the Secret, in the pod's namespace, that
	// holds the runner API token under TokenSecretKey. Default: the name the
	// webhook was configured with.
	AnnotationTokenSecret = KeyPrefix + "token-secret"
	// AnnotationChild says what the runner supervises: ChildImage (default:
	// the container's command, else its image's ENTRYPOINT and CMD) or
	// ChildNone (no child: the runner only serves its API, idle like a
	// pause container; warm pool pods without a command use it). ChildNone
	// needs server mode and target containers without command or args.
	AnnotationChild = KeyPrefix + "child"
	// AnnotationRestartPolicy is what the runner does, in place, when its
	// child exits: RestartAlways, RestartOnFailure or RestartNever (the
	// runner, its API and the work directory stay). Default: the pod's
	// spec.restartPolicy. Server mode only (wrap mode exits with the child),
	// and refused with ChildNone.
	AnnotationRestartPolicy = KeyPrefix + "restart-policy"
	// AnnotationLivenessProbe is a Kubernetes core/v1 Probe, as JSON, that the
	// runner applies to its child (exec, httpGet or tcpSocket; grpc is
	// refused): failureThreshold failures in a row kill the child's process
	// group, then the restart policy applies. Validated at admission with the
	// API server's rules; refused with ChildNone.
	AnnotationLivenessProbe = KeyPrefix + "liveness-probe"
)

// Values of AnnotationRestartPolicy, as a pod's spec.restartPolicy. The
// webhook hands the value to the runner's --restart-policy, so they are the
// runner's own (runner/api).
const (
	RestartAlways    = api.RestartAlways
	RestartOnFailure = api.RestartOnFailure
	RestartNever     = api.RestartNever
)

// RestartPolicies lists every value of AnnotationRestartPolicy.
var RestartPolicies = []string{RestartAlways, RestartOnFailure, RestartNever}

// Values of AnnotationChild.
const (
	ChildImage = "image"
	ChildNone  = "none"
)

// Pod annotations the webhook writes.
const (
	// AnnotationStatus records that the pod was injected, with what runner
	// version and method, so that a re-invocation changes nothing. Its value
	// is the JSON form of InjectionStatus.
	AnnotationStatus = KeyPrefix + "status"
)

// Pod annotations the claim protocol writes on a pool pod (never on a pod
// a user creates; the webhook accepts them so that a pool pod made by this
// or an earlier release passes admission).
const (
	// AnnotationClaimedBy named the SandboxClaim a pool pod was bound to,
	// as "namespace/name", on pods claimed by earlier releases; none is
	// written now. A claim takes a warm pod by becoming its controller
	// owner (which names it; the claim's status.boundAt says when) and
	// changes nothing else: a label change makes NetworkPolicy
	// implementations recompute (kube-router rewrites the node's rules),
	// an annotation change makes the kubelet re-sync the pod, once per
	// claim.
	AnnotationClaimedBy = KeyPrefix + "claimed-by"
	// AnnotationClaimedAt was when the pod was claimed, in RFC 3339 with
	// nanoseconds, on pods claimed by earlier releases.
	AnnotationClaimedAt = KeyPrefix + "claimed-at"
	// AnnotationClaimNonce on a pool pod is a random value the webhook
	// gives it at admission. The pod's runner gets only a verifier of the
	// claim credential HMAC(claim key, namespace/nonce), which the claim
	// controller alone can compute (internal/claimkey).
	AnnotationClaimNonce = KeyPrefix + "claim-nonce"
	// AnnotationInsecureLoopback ("true") lets the runner of a pod without
	// a token answer loopback clients (kubectl port-forward). Without it a
	// runner with no token answers nothing but its probes.
	AnnotationInsecureLoopback = KeyPrefix + "insecure-loopback"
)

// Labels.
const (
	// LabelInject on a namespace: InjectEnabled injects every pod of the
	// namespace that does not opt out; InjectDisabled injects none.
	LabelInject = KeyPrefix + "inject"
	// LabelPool on a pod names the warm pool it belongs to (set by the agent).
	LabelPool = KeyPrefix + "pool"
	// LabelState on a pool pod is the state it was made in: StateWarm (by
	// the node agent) or StateClaimed (a cold pod, made for its claim). A
	// claim does not change it: a pod is claimed once a SandboxClaim is its
	// controller owner (pool.State). Pods claimed by controllers before
	// that carry StateClaimed.
	LabelState = KeyPrefix + "state"
	// LabelImageVolume on a node says whether its container runtime mounts
	// Kubernetes image volumes ("true" or "false"); the node agent keeps it
	// current. The webhook's "auto" injection method reads it.
	LabelImageVolume = KeyPrefix + "image-volume"
	// LabelTemplateHash on a pool pod is a digest of the pool settings the
	// pod was made from; the agent replaces warm pods whose hash differs
	// from the pool's current one.
	LabelTemplateHash = KeyPrefix + "template-hash"
	// LabelOrigin is OriginCold on a pod created at claim time because no
	// warm pod was claimable; a warm pod a claim takes keeps its labels and
	// has none (pool.Origin; earlier controllers set OriginWarm).
	LabelOrigin = KeyPrefix + "origin"
)

// Node annotations the node agent writes.
const (
	// AnnotationPrePull on a node is the agent's compact pre-pull status, a
	// single line such as "present 5/7, pulling 1, failed 1 (ref: registry
	// error); paused: why; failing: error" (prepuller.Summary, then the
	// pause reason when pulls are paused, then why the last sync failed as
	// a whole when it did), patched only when it changes.
	AnnotationPrePull = KeyPrefix + "prepull"
)

// Values of LabelOrigin.
const (
	OriginWarm = "warm"
	OriginCold = "cold"
)

// AnnotationDefaultContainer is Kubernetes' own annotation naming a pod's
// main container; it is the default target when AnnotationContainers is unset.
const AnnotationDefaultContainer = "kubectl.kubernetes.io/default-container"

// Values of AnnotationInject on a pod.
const (
	InjectTrue  = "true"
	InjectFalse = "false"
)

// Values of LabelInject on a namespace.
const (
	InjectEnabled  = "enabled"
	InjectDisabled = "disabled"
)

// Mode is how the runner treats the original command of a wrapped container.
// The webhook hands it to the runner's --mode, so its values are the runner's
// own (runner/api).
type Mode string

const (
	// ModeServer runs the original command as a supervised child and keeps
	// serving the API after it exits. The default.
	ModeServer Mode = api.ModeServer
	// ModeWrap exits with the child's exit code, for Jobs.
	ModeWrap Mode = api.ModeWrap
)

// DefaultMode is the mode of a pod without AnnotationMode.
const DefaultMode = ModeServer

// Modes lists every valid Mode, for messages and validation.
var Modes = []Mode{ModeServer, ModeWrap}

// Values of LabelState on a pool pod.
const (
	StateWarm    = "warm"
	StateClaimed = "claimed"
)

// StateOrphaned is never a label value: it is what pool.State says of a
// pool pod that neither a SandboxPool nor a SandboxClaim controls, such as
// one whose claim was deleted with --cascade=orphan. No one counts or
// claims it, and the claim controller deletes it.
const StateOrphaned = "orphaned"

// TokenSecretKey is the key, inside the token Secret, that holds the bearer
// token of the runner API.
const TokenSecretKey = "token"

// UserAnnotations lists the sandbox.io annotations a user may set on a pod.
// Any other sandbox.io annotation but AnnotationStatus is refused at
// admission, so that a misspelled key is loud instead of ignored.
var UserAnnotations = []string{AnnotationInject, AnnotationContainers, AnnotationMode, AnnotationTokenSecret, AnnotationChild, AnnotationInsecureLoopback,
	AnnotationRestartPolicy, AnnotationLivenessProbe}

// SystemAnnotations lists the sandbox.io annotations our own components
// write; admission accepts them too.
var SystemAnnotations = []string{AnnotationStatus, AnnotationClaimedBy, AnnotationClaimedAt, AnnotationClaimNonce}

// IsOurKey reports whether an annotation or label key is in the sandbox.io
// namespace.
func IsOurKey(key string) bool { return strings.HasPrefix(key, KeyPrefix) }
