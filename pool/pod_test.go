package pool

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"sandbox.io/injector/api/v1alpha1"
)

func testPool() *v1alpha1.SandboxPool {
	return &v1alpha1.SandboxPool{
		ObjectMeta: metav1.ObjectMeta{Name: "py", Namespace: "team", UID: "uid-1", Generation: 3},
		Spec: v1alpha1.SandboxPoolSpec{
			Template: v1alpha1.SandboxTemplate{
				Image: "python:3.13", Env: []corev1.EnvVar{{Name: "A", Value: "b"}},
				ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
			},
			PodsPerNode:       ptr.To[int32](2),
			NodeSelector:      map[string]string{"pool": "sandbox"},
			Tolerations:       []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpExists}},
			PriorityClassName: "low",
		},
	}
}

func TestTemplateHash(t *testing.T) {
	base := TemplateHash(testPool())
	if len(base) != 10 || base != TemplateHash(testPool()) {
		t.Fatalf("hash %q is not a stable 10-character digest", base)
	}
	changes := map[string]func(p *v1alpha1.SandboxPool){
		"image":      func(p *v1alpha1.SandboxPool) { p.Spec.Template.Image = "python:3.14" },
		"env":        func(p *v1alpha1.SandboxPool) { p.Spec.Template.Env[0].Value = "c" },
		"command":    func(p *v1alpha1.SandboxPool) { p.Spec.Template.Command = []string{"sleep"} },
		"toleration": func(p *v1alpha1.SandboxPool) { p.Spec.Tolerations = nil },
		"priority":   func(p *v1alpha1.SandboxPool) { p.Spec.PriorityClassName = "" },
	}
	for name, change := range changes {
		p := testPool()
		change(p)
		if TemplateHash(p) == base {
			t.Errorf("changing the %s keeps hash %s", name, base)
		}
	}
	same := map[string]func(p *v1alpha1.SandboxPool){
		"podsPerNode":  func(p *v1alpha1.SandboxPool) { p.Spec.PodsPerNode = ptr.To[int32](9) },
		"nodeSelector": func(p *v1alpha1.SandboxPool) { p.Spec.NodeSelector = nil },
		"generation":   func(p *v1alpha1.SandboxPool) { p.Generation++ },
	}
	for name, change := range same {
		p := testPool()
		change(p)
		if TemplateHash(p) != base {
			t.Errorf("changing the %s changes the hash: existing pods would be replaced for nothing", name)
		}
	}
}

func TestWarmAndColdPods(t *testing.T) {
	p := testPool()
	warm := WarmPod(p, "node-a")
	if warm.Spec.NodeName != "node-a" || warm.Spec.NodeSelector != nil {
		t.Errorf("warm pod: nodeName %q nodeSelector %v, want bound to node-a without a selector", warm.Spec.NodeName, warm.Spec.NodeSelector)
	}
	if !MadeWarmSelector("py").Matches(labels.Set(warm.Labels)) || warm.Labels[v1alpha1.LabelTemplateHash] != TemplateHash(p) {
		t.Errorf("warm pod labels %v", warm.Labels)
	}
	if warm.Annotations[v1alpha1.AnnotationChild] != v1alpha1.ChildNone {
		t.Errorf("a pool without a command: annotations %v, want %s=%s (idle until claimed)", warm.Annotations, v1alpha1.AnnotationChild, v1alpha1.ChildNone)
	}
	withCommand := testPool()
	withCommand.Spec.Template.Command = []string{"sleep", "infinity"}
	if _, ok := WarmPod(withCommand, "node-a").Annotations[v1alpha1.AnnotationChild]; ok {
		t.Error("a pool with a command must run it: no sandbox.io/child annotation")
	}
	if warm.Annotations[v1alpha1.AnnotationInject] != "true" || warm.GenerateName != "py-" || warm.Namespace != "team" {
		t.Errorf("warm pod meta: %+v", warm.ObjectMeta)
	}
	if o := warm.OwnerReferences; len(o) != 1 || o[0].UID != "uid-1" || o[0].Kind != "SandboxPool" || !*o[0].Controller {
		t.Errorf("owner references %+v", o)
	}
	c := warm.Spec.Containers
	if len(c) != 1 || c[0].Name != ContainerName || c[0].Image != "python:3.13" || c[0].Env[0].Name != "A" {
		t.Errorf("containers %+v", c)
	}
	if *warm.Spec.AutomountServiceAccountToken || *warm.Spec.EnableServiceLinks {
		t.Error("a pool pod without a service account must not mount an API token nor get service links")
	}
	// The pod owns its copy of the template.
	warm.Spec.Containers[0].Env[0].Value = "changed"
	if p.Spec.Template.Env[0].Value != "b" {
		t.Error("changing the pod changed the pool")
	}

	cold := ColdPod(p)
	if cold.Spec.NodeName != "" || cold.Spec.NodeSelector["pool"] != "sandbox" {
		t.Errorf("cold pod: nodeName %q selector %v, want scheduled within the pool's selector", cold.Spec.NodeName, cold.Spec.NodeSelector)
	}
	if cold.Labels[v1alpha1.LabelState] != v1alpha1.StateClaimed || cold.Labels[v1alpha1.LabelOrigin] != v1alpha1.OriginCold {
		t.Errorf("cold pod labels %v", cold.Labels)
	}
	if _, ok := cold.Annotations[v1alpha1.AnnotationClaimedBy]; ok {
		t.Errorf("cold pod annotations %v: the claim owner reference names the claim", cold.Annotations)
	}
	p.Spec.Template.ServiceAccountName = "runner"
	if *WarmPod(p, "n").Spec.AutomountServiceAccountToken {
		t.Error("a pool naming a service account but not asking for its token got it mounted")
	}
	p.Spec.Template.AutomountServiceAccountToken = ptr.To(true)
	if !*WarmPod(p, "n").Spec.AutomountServiceAccountToken {
		t.Error("a pool asking for its service account token did not get it mounted")
	}
}

func TestIsolationSettings(t *testing.T) {
	t.Parallel()
	p := testPool()
	defaults := WarmPod(p, "n")
	if sc := defaults.Spec.SecurityContext; sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || sc.RunAsNonRoot != nil {
		t.Errorf("default pod securityContext %+v, want seccomp RuntimeDefault and the image's user", sc)
	}
	if sc := defaults.Spec.Containers[0].SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("default container securityContext %+v, want no privilege escalation and capabilities drop ALL", sc)
	}
	if defaults.Spec.RuntimeClassName != nil || defaults.Spec.HostUsers != nil || len(defaults.Spec.Volumes) != 0 || defaults.Spec.Containers[0].WorkingDir != "" {
		t.Errorf("a template without isolation settings got runtime class %v, hostUsers %v, volumes %v, workingDir %q",
			defaults.Spec.RuntimeClassName, defaults.Spec.HostUsers, defaults.Spec.Volumes, defaults.Spec.Containers[0].WorkingDir)
	}

	p.Spec.Template.RuntimeClassName = ptr.To("gvisor")
	p.Spec.Template.HostUsers = ptr.To(false)
	p.Spec.Template.PodSecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), RunAsNonRoot: ptr.To(true)}
	p.Spec.Template.SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true)}
	p.Spec.Template.WorkDir = &v1alpha1.WorkDir{SizeLimit: resource.MustParse("64Mi")}
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}}
	for name, pod := range map[string]*corev1.Pod{"warm": WarmPod(p, "n"), "cold": ColdPod(p)} {
		s := pod.Spec
		if *s.RuntimeClassName != "gvisor" || *s.HostUsers || *s.SecurityContext.RunAsUser != 1000 || !*s.Containers[0].SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("%s pod: runtime class %v, hostUsers %v, securityContexts %+v %+v", name, *s.RuntimeClassName, *s.HostUsers, s.SecurityContext, s.Containers[0].SecurityContext)
		}
		if c := s.Containers[0].SecurityContext; c.Capabilities == nil || c.Capabilities.Drop[0] != "ALL" || *c.AllowPrivilegeEscalation {
			t.Errorf("%s pod: capabilities %+v, want drop ALL filled in", name, s.Containers[0].SecurityContext.Capabilities)
		}
		if len(s.Volumes) != 1 || s.Volumes[0].Name != WorkDirVolume || s.Volumes[0].EmptyDir == nil || s.Volumes[0].EmptyDir.SizeLimit.String() != "64Mi" {
			t.Errorf("%s pod volumes %+v, want the work-directory emptyDir of 64Mi", name, s.Volumes)
		}
		c := s.Containers[0]
		if c.WorkingDir != v1alpha1.DefaultWorkDirPath || len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != v1alpha1.DefaultWorkDirPath {
			t.Errorf("%s pod: workingDir %q mounts %+v, want the work directory at %s", name, c.WorkingDir, c.VolumeMounts, v1alpha1.DefaultWorkDirPath)
		}
	}
	if WarmPod(p, "n").Spec.Affinity != nil || ColdPod(p).Spec.Affinity == nil {
		t.Error("affinity belongs to cold pods (scheduled) only; warm pods are bound to their node")
	}
	// Each setting that shapes the pod replaces warm pods made without it.
	if TemplateHash(p) == TemplateHash(testPool()) {
		t.Error("isolation settings do not change the template hash")
	}
}

func TestClaimable(t *testing.T) {
	p := testPool()
	ready := func() *corev1.Pod {
		pod := WarmPod(p, "node-a")
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.7",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
		return pod
	}
	if !Claimable(p, ready()) {
		t.Fatal("a Ready warm pod with an IP is not claimable")
	}
	now := metav1.Now()
	claimRef := metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "SandboxClaim", Name: "c", UID: "claim-uid", Controller: ptr.To(true)}
	cases := map[string]func(*corev1.Pod){
		"claimed":        func(pod *corev1.Pod) { pod.OwnerReferences = []metav1.OwnerReference{claimRef} },
		"claimed before": func(pod *corev1.Pod) { pod.Labels[v1alpha1.LabelState] = v1alpha1.StateClaimed },
		"other pool":     func(pod *corev1.Pod) { pod.Labels[v1alpha1.LabelPool] = "other" },
		"stale template": func(pod *corev1.Pod) { pod.Labels[v1alpha1.LabelTemplateHash] = "0000000000" },
		"being deleted":  func(pod *corev1.Pod) { pod.DeletionTimestamp = &now },
		"no IP":          func(pod *corev1.Pod) { pod.Status.PodIP = "" },
		"pending":        func(pod *corev1.Pod) { pod.Status.Phase = corev1.PodPending },
		"not ready":      func(pod *corev1.Pod) { pod.Status.Conditions[0].Status = corev1.ConditionFalse },
		"no condition":   func(pod *corev1.Pod) { pod.Status.Conditions = nil },
	}
	for name, change := range cases {
		pod := ready()
		change(pod)
		if Claimable(p, pod) {
			t.Errorf("%s pod is claimable", name)
		}
	}
}

func TestStateAndOrigin(t *testing.T) {
	p := testPool()
	warm := WarmPod(p, "node-a")
	if State(warm) != v1alpha1.StateWarm || Origin(warm) != v1alpha1.OriginWarm {
		t.Errorf("a warm pod: state %q origin %q", State(warm), Origin(warm))
	}
	// A claim takes it by becoming its controller; its labels stay.
	taken := warm.DeepCopy()
	taken.OwnerReferences = []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "SandboxClaim", Name: "c", UID: "u", Controller: ptr.To(true)}}
	if State(taken) != v1alpha1.StateClaimed || Origin(taken) != v1alpha1.OriginWarm || ClaimOwner(taken) != "c" {
		t.Errorf("a taken pod: state %q origin %q claim %q", State(taken), Origin(taken), ClaimOwner(taken))
	}
	if ClaimOwner(warm) != "" {
		t.Errorf("a warm pod has claim owner %q", ClaimOwner(warm))
	}
	// A SandboxClaim of this API group, in any version, as controller.
	later := warm.DeepCopy()
	later.OwnerReferences = []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.Group + "/v1", Kind: "SandboxClaim", Name: "c", UID: "u", Controller: ptr.To(true)}}
	if State(later) != v1alpha1.StateClaimed || ClaimOwner(later) != "c" {
		t.Errorf("a pod taken by a claim of a later version: state %q claim %q", State(later), ClaimOwner(later))
	}
	// A pool controls a pod taken by an earlier release's relabel.
	relabelled := warm.DeepCopy()
	relabelled.Labels[v1alpha1.LabelState] = v1alpha1.StateClaimed
	if State(relabelled) != v1alpha1.StateClaimed || ClaimOwner(relabelled) != "" {
		t.Errorf("a pod its pool controls labelled claimed: state %q claim %q", State(relabelled), ClaimOwner(relabelled))
	}
	// Neither a pool nor a claim of this API group as controller: an
	// orphan, whatever its labels say.
	for name, refs := range map[string][]metav1.OwnerReference{
		"no owner":       nil,
		"not controller": {{APIVersion: v1alpha1.GroupVersion.String(), Kind: "SandboxClaim", Name: "c", UID: "u"}},
		"other group":    {{APIVersion: "extensions.agents.x-k8s.io/v1alpha1", Kind: "SandboxClaim", Name: "c", UID: "u", Controller: ptr.To(true)}},
		"other kind":     {{APIVersion: v1alpha1.GroupVersion.String(), Kind: "SandboxTemplate", Name: "c", UID: "u", Controller: ptr.To(true)}},
	} {
		for _, label := range []string{v1alpha1.StateWarm, v1alpha1.StateClaimed} {
			pod := warm.DeepCopy()
			pod.Labels[v1alpha1.LabelState] = label
			pod.OwnerReferences = refs
			if State(pod) != v1alpha1.StateOrphaned || ClaimOwner(pod) != "" {
				t.Errorf("%s, labelled %s: state %q claim %q, want orphaned", name, label, State(pod), ClaimOwner(pod))
			}
		}
	}
	cold := ColdPod(p)
	if State(cold) != v1alpha1.StateClaimed || Origin(cold) != v1alpha1.OriginCold {
		t.Errorf("a cold pod: state %q origin %q", State(cold), Origin(cold))
	}
}
