package pool

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"sandbox.io/injector/api/v1alpha1"
)

// ContainerName is the name of the sandbox container of every pool pod; the
// webhook wraps it (it is the pod's only container).
const ContainerName = "sandbox"

// terminationGracePeriod is short: a warm pod holds no work, and a released
// sandbox is deleted on purpose.
const terminationGracePeriod int64 = 5

// podFormat is hashed.Format.
const podFormat = 2

// WorkDirVolume is the name of the work-directory volume of a pool whose
// template sets WorkDir.
const WorkDirVolume = "sandbox-work"

// hashed is what TemplateHash digests: every pool setting that shapes a pod.
// Changing PodsPerNode or the node selector does not replace pods.
type hashed struct {
	// Format counts changes to how pods are built from the same template
	// (2: secure defaults and no service account token unless asked), so
	// that pods built the older way are replaced.
	Format            int                      `json:"format"`
	Template          v1alpha1.SandboxTemplate `json:"template"`
	Tolerations       []corev1.Toleration      `json:"tolerations,omitempty"`
	PriorityClassName string                   `json:"priorityClassName,omitempty"`
}

// TemplateHash is a short digest of the pool settings a pod is made from.
// Pods carry it in v1alpha1.LabelTemplateHash; a warm pod whose hash differs
// from its pool's is replaced, and is not claimable.
func TemplateHash(p *v1alpha1.SandboxPool) string {
	b, err := json.Marshal(hashed{Format: podFormat, Template: p.Spec.Template, Tolerations: p.Spec.Tolerations, PriorityClassName: p.Spec.PriorityClassName})
	if err != nil {
		// The types hold only strings, numbers and quantities, which
		// always encode.
		panic("pool: encoding a template: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:5])
}

// Selector selects the pods of one pool.
func Selector(poolName string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{v1alpha1.LabelPool: poolName})
}

// MadeWarmSelector selects the pods of one pool that were made warm: those
// still warm, and those a claim has taken since by its owner reference
// alone (State tells them apart).
func MadeWarmSelector(poolName string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{v1alpha1.LabelPool: poolName, v1alpha1.LabelState: v1alpha1.StateWarm})
}

// State is a pool pod's state: StateClaimed when a SandboxClaim is its
// controller; its sandbox.io/state label when a SandboxPool is (StateWarm;
// StateClaimed on a pod taken by a controller of an earlier release);
// StateOrphaned when neither is, which the garbage collector leaves behind
// (an owner deleted with --cascade=orphan; the pool-pods admission policy
// lets no one else but claims.extraPoolPodCreators create a pool pod
// without one or change its owners). A claim takes a warm pod by pointing
// the pod's controller owner reference at itself and changes nothing else:
// a label change makes NetworkPolicy implementations recompute (kube-router
// rewrites the node's rules), and a label or annotation change makes the
// kubelet re-sync the pod, once per claim.
func State(pod *corev1.Pod) string {
	switch controllerKind(pod) {
	case "SandboxClaim":
		return v1alpha1.StateClaimed
	case "SandboxPool":
		return pod.Labels[v1alpha1.LabelState]
	default:
		return v1alpha1.StateOrphaned
	}
}

// ClaimOwner is the name of the SandboxClaim (of this API group) that
// controls pod, "" when none does.
func ClaimOwner(pod *corev1.Pod) string {
	if controllerKind(pod) == "SandboxClaim" {
		return metav1.GetControllerOfNoCopy(pod).Name
	}
	return ""
}

// controllerKind is the kind of pod's controller owner when it is of this
// API group (any version), else "".
func controllerKind(pod *corev1.Pod) string {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return ""
	}
	// No allocation: State runs on every pool pod of every status and plan.
	if group, _, ok := strings.Cut(ref.APIVersion, "/"); !ok || group != v1alpha1.GroupVersion.Group {
		return ""
	}
	return ref.Kind
}

// Origin is how a claimed pod's claim got it: OriginCold for a pod made for
// the claim (labelled so at creation), else OriginWarm.
func Origin(pod *corev1.Pod) string {
	if o := pod.Labels[v1alpha1.LabelOrigin]; o != "" {
		return o
	}
	return v1alpha1.OriginWarm
}

// WarmPod is a warm pod of the pool, bound to node through spec.nodeName
// (no scheduler round trip; the webhook's "auto" method sees the node and
// can mount the runner from an image volume). Its name is generated.
func WarmPod(p *v1alpha1.SandboxPool, node string) *corev1.Pod {
	pod := basePod(p, v1alpha1.StateWarm)
	pod.Spec.NodeName = node
	return pod
}

// ColdPod is a pod of the pool created at claim time because no warm pod
// was claimable: claimed from the start (so no agent counts it as warm),
// labelled v1alpha1.OriginCold, and left to the scheduler within the pool's
// node selector.
func ColdPod(p *v1alpha1.SandboxPool) *corev1.Pod {
	pod := basePod(p, v1alpha1.StateClaimed)
	pod.Labels[v1alpha1.LabelOrigin] = v1alpha1.OriginCold
	if len(p.Spec.NodeSelector) > 0 {
		pod.Spec.NodeSelector = make(map[string]string, len(p.Spec.NodeSelector))
		for k, v := range p.Spec.NodeSelector {
			pod.Spec.NodeSelector[k] = v
		}
	}
	pod.Spec.Affinity = p.Spec.Affinity.DeepCopy()
	return pod
}

func basePod(p *v1alpha1.SandboxPool, state string) *corev1.Pod {
	t := p.Spec.Template.DeepCopy()
	automount := t.AutomountServiceAccountToken != nil && *t.AutomountServiceAccountToken
	isController := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: p.Name + "-",
			Namespace:    p.Namespace,
			Labels: map[string]string{
				v1alpha1.LabelPool:         p.Name,
				v1alpha1.LabelState:        state,
				v1alpha1.LabelTemplateHash: TemplateHash(p),
			},
			Annotations: map[string]string{
				v1alpha1.AnnotationInject: v1alpha1.InjectTrue,
			},
			// Deleting the pool deletes its pods, claimed ones too: a pool
			// is the unit a platform team installs and removes.
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(),
				Kind:       "SandboxPool",
				Name:       p.Name,
				UID:        p.UID,
				Controller: &isController,
			}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:            ContainerName,
				Image:           t.Image,
				Command:         t.Command,
				Args:            t.Args,
				Env:             t.Env,
				Resources:       t.Resources,
				SecurityContext: containerSecurityContext(t),
			}},
			ServiceAccountName:            t.ServiceAccountName,
			RuntimeClassName:              t.RuntimeClassName,
			HostUsers:                     t.HostUsers,
			SecurityContext:               podSecurityContext(t),
			AutomountServiceAccountToken:  &automount,
			ImagePullSecrets:              t.ImagePullSecrets,
			Tolerations:                   p.Spec.Tolerations,
			PriorityClassName:             p.Spec.PriorityClassName,
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To(terminationGracePeriod),
			// Thousands of Service variables in every sandbox are noise and
			// slow the start.
			EnableServiceLinks: ptr.To(false),
		},
	}
	if w := t.WorkDir; w != nil {
		limit := w.SizeLimit.DeepCopy()
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name:         WorkDirVolume,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: w.Medium, SizeLimit: &limit}},
		})
		c := &pod.Spec.Containers[0]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: WorkDirVolume, MountPath: w.Path()})
		// The runner serves /files from, and runs /execute in, its working
		// directory.
		c.WorkingDir = w.Path()
	}
	if len(t.Command) == 0 && len(t.Args) == 0 {
		// Idle until claimed: the runner serves with no child, and the
		// webhook does not read the image's ENTRYPOINT/CMD for each pod.
		pod.Annotations[v1alpha1.AnnotationChild] = v1alpha1.ChildNone
	}
	return pod
}

// podSecurityContext is the template's, with the RuntimeDefault seccomp
// profile when neither it nor the container names a profile: what Pod
// Security restricted asks that changes nothing a sandbox does.
func podSecurityContext(t *v1alpha1.SandboxTemplate) *corev1.PodSecurityContext {
	sc := t.PodSecurityContext
	if sc == nil {
		sc = &corev1.PodSecurityContext{}
	}
	if sc.SeccompProfile == nil && (t.SecurityContext == nil || t.SecurityContext.SeccompProfile == nil) {
		sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	return sc
}

// containerSecurityContext is the template's, with what it leaves unset
// filled as Pod Security restricted asks: no privilege escalation (unless
// the container is privileged or adds CAP_SYS_ADMIN, where the API refuses
// it) and every capability dropped. With a non-root user, the pod then
// meets restricted.
func containerSecurityContext(t *v1alpha1.SandboxTemplate) *corev1.SecurityContext {
	sc := t.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if sc.Capabilities == nil {
		sc.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
	}
	privileged := (sc.Privileged != nil && *sc.Privileged) ||
		slices.ContainsFunc(sc.Capabilities.Add, func(c corev1.Capability) bool { return c == "SYS_ADMIN" || c == "CAP_SYS_ADMIN" })
	if sc.AllowPrivilegeEscalation == nil && !privileged {
		sc.AllowPrivilegeEscalation = ptr.To(false)
	}
	return sc
}

// IsReady reports whether the pod's Ready condition is true.
func IsReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Claimable reports whether a claim may take pod from pool p: a warm pod of
// the pool made from its current template, not being deleted, Ready (its
// runner's readiness probe answered) and with an IP. The claim still checks
// the runner answers before it hands the pod out.
func Claimable(p *v1alpha1.SandboxPool, pod *corev1.Pod) bool {
	return pod.DeletionTimestamp == nil &&
		pod.Labels[v1alpha1.LabelPool] == p.Name &&
		State(pod) == v1alpha1.StateWarm &&
		pod.Labels[v1alpha1.LabelTemplateHash] == TemplateHash(p) &&
		pod.Status.PodIP != "" &&
		pod.Status.Phase == corev1.PodRunning &&
		IsReady(pod)
}
