package webhook

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"sandbox.io/injector/api/v1alpha1"
)

// Plan is a validated decision about how to inject one pod: which
// containers to wrap, in which mode, with which token Secret. NewPlan
// builds it; Patch turns it into JSON patch operations.
type Plan struct {
	// Method is how the runner reaches the containers: v1alpha1.MethodCopy
	// (the default NewPlan sets unless the configuration forces
	// MethodImageVolume) or MethodImageVolume. The handler sets it from
	// ChooseMethod before Patch.
	Method string

	pod         *corev1.Pod
	cfg         *Config
	mode        v1alpha1.Mode
	tokenSecret string
	targets     []int // indexes into pod.Spec.Containers, in pod order
	injected    bool
	noChild     bool
	sv          supervision
	// pool: the pod belongs to a warm pool (label sandbox.io/pool); its
	// runners get the claim verifier of nonce instead of a token, and
	// addNonce says the nonce is new (the patch adds the annotation).
	pool     bool
	nonce    string
	addNonce bool
	// insecureLoopback: sandbox.io/insecure-loopback "true".
	insecureLoopback bool
	warnings         []string
}

// NewPlan validates every sandbox.io annotation of pod and chooses the
// containers to wrap. cfg must be completed. A malformed value, a name the
// pod already uses for something that is not ours, or a mount path clash is
// a Refusal that names the key or field at fault.
func NewPlan(pod *corev1.Pod, cfg *Config) (*Plan, error) {
	p := &Plan{pod: pod, cfg: cfg, mode: v1alpha1.DefaultMode, tokenSecret: cfg.TokenSecret, Method: v1alpha1.MethodCopy}
	if cfg.Method == v1alpha1.MethodImageVolume {
		p.Method = v1alpha1.MethodImageVolume
	}
	if err := p.readAnnotations(); err != nil {
		return nil, err
	}
	if len(pod.Spec.Containers) == 0 {
		return nil, refuse("spec.containers", "the pod has no containers to wrap")
	}
	injected, err := p.alreadyInjected()
	if err != nil {
		return nil, err
	}
	if injected {
		p.injected = true
		return p, nil
	}
	if err := p.chooseTargets(); err != nil {
		return nil, err
	}
	if err := p.checkMounts(); err != nil {
		return nil, err
	}
	if err := p.checkNoChild(); err != nil {
		return nil, err
	}
	if err := p.checkSupervision(); err != nil {
		return nil, err
	}
	return p, nil
}

// checkNoChild refuses sandbox.io/child: none where it would drop part of
// the pod's spec: a wrapped container's command or args, or wrap mode,
// which exits with its child's exit code.
func (p *Plan) checkNoChild() error {
	if !p.noChild {
		return nil
	}
	key := "annotation " + v1alpha1.AnnotationChild
	if p.mode == v1alpha1.ModeWrap {
		return refuse(key, "value %q needs mode %s: mode %s exits with its child's exit code", v1alpha1.ChildNone, v1alpha1.ModeServer, v1alpha1.ModeWrap)
	}
	for _, i := range p.targets {
		c := &p.pod.Spec.Containers[i]
		if len(c.Command) > 0 || len(c.Args) > 0 {
			return refuse(key, "value %q would drop the command and args of container %s; remove them or the annotation", v1alpha1.ChildNone, c.Name)
		}
	}
	return nil
}

// AlreadyInjected reports whether the pod carries our status annotation and
// our volume or init container: mutating it again must change nothing.
func (p *Plan) AlreadyInjected() bool { return p.injected }

// Mode is the runner mode the pod asked for.
func (p *Plan) Mode() v1alpha1.Mode { return p.mode }

// Targets returns the names of the containers to wrap.
func (p *Plan) Targets() []string {
	names := make([]string, 0, len(p.targets))
	for _, i := range p.targets {
		names = append(names, p.pod.Spec.Containers[i].Name)
	}
	return names
}

// ImagesToLookUp returns the images of the wrapped containers that have no
// command, whose ENTRYPOINT and CMD must be read from the registry.
func (p *Plan) ImagesToLookUp() []string {
	if p.noChild {
		return nil
	}
	var images []string
	for _, i := range p.targets {
		c := &p.pod.Spec.Containers[i]
		if len(c.Command) == 0 && !slices.Contains(images, c.Image) {
			images = append(images, c.Image)
		}
	}
	return images
}

func (p *Plan) readAnnotations() error {
	keys := make([]string, 0, len(p.pod.Annotations))
	for k := range p.pod.Annotations {
		if v1alpha1.IsOurKey(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // one deterministic message when several keys are wrong
	for _, k := range keys {
		if !slices.Contains(v1alpha1.SystemAnnotations, k) && !slices.Contains(v1alpha1.UserAnnotations, k) {
			return refuse("annotation "+k, "unknown key; the keys a pod may set are %s",
				strings.Join(v1alpha1.UserAnnotations, ", "))
		}
	}
	if v, ok := p.pod.Annotations[v1alpha1.AnnotationMode]; ok {
		mode := v1alpha1.Mode(v)
		if !slices.Contains(v1alpha1.Modes, mode) {
			return refuse("annotation "+v1alpha1.AnnotationMode, "value %q is not allowed; use %q or %q",
				v, v1alpha1.ModeServer, v1alpha1.ModeWrap)
		}
		p.mode = mode
	}
	switch v, ok := p.pod.Annotations[v1alpha1.AnnotationChild]; {
	case !ok || v == v1alpha1.ChildImage:
	case v == v1alpha1.ChildNone:
		p.noChild = true
	default:
		return refuse("annotation "+v1alpha1.AnnotationChild, "value %q is not allowed; use %q or %q",
			v, v1alpha1.ChildImage, v1alpha1.ChildNone)
	}
	if v, ok := p.pod.Annotations[v1alpha1.AnnotationTokenSecret]; ok {
		if msgs := validation.IsDNS1123Subdomain(v); len(msgs) > 0 {
			return refuse("annotation "+v1alpha1.AnnotationTokenSecret,
				"value %q is not a valid Secret name: %s", v, strings.Join(msgs, "; "))
		}
		p.tokenSecret = v
	}
	sv, err := readSupervision(p.pod)
	if err != nil {
		return err
	}
	p.sv = sv
	switch v, ok := p.pod.Annotations[v1alpha1.AnnotationInsecureLoopback]; {
	case !ok || v == "false":
	case v == "true":
		p.insecureLoopback = true
	default:
		return refuse("annotation "+v1alpha1.AnnotationInsecureLoopback, "value %q is not allowed; use \"true\" or \"false\"", v)
	}
	if err := p.readPool(); err != nil {
		return err
	}
	if v, ok := p.pod.Labels[v1alpha1.LabelState]; ok && v != v1alpha1.StateWarm && v != v1alpha1.StateClaimed {
		return refuse("label "+v1alpha1.LabelState, "value %q is not allowed; use %q or %q",
			v, v1alpha1.StateWarm, v1alpha1.StateClaimed)
	}
	return nil
}

// readPool recognizes a pool pod and reads or makes its claim nonce.
func (p *Plan) readPool() error {
	if _, ok := p.pod.Labels[v1alpha1.LabelPool]; !ok {
		return nil
	}
	p.pool = true
	key := "annotation " + v1alpha1.AnnotationClaimNonce
	if p.cfg.ClaimKeys == nil || len(p.cfg.ClaimKeys.Keys().Current) == 0 {
		return refuse("label "+v1alpha1.LabelPool, "pods of a warm pool need the claim key, and this webhook runs without claims (--claims=false)")
	}
	if p.insecureLoopback {
		return refuse("annotation "+v1alpha1.AnnotationInsecureLoopback, "pods of a warm pool take no insecure loopback access: their API opens only to their claimant")
	}
	if v, ok := p.pod.Annotations[v1alpha1.AnnotationClaimNonce]; ok {
		if len(v) < 16 || len(v) > 128 || strings.Trim(v, "0123456789abcdef") != "" {
			return refuse(key, "value %q is not a claim nonce (16 to 128 lower-case hex digits); leave it out and the webhook makes one", v)
		}
		p.nonce = v
		return nil
	}
	nonce, err := p.cfg.NewNonce()
	if err != nil {
		return fmt.Errorf("making the claim nonce of a pool pod: %w", err)
	}
	p.nonce, p.addNonce = nonce, true
	return nil
}

// alreadyInjected tells a pod we injected (no-op) from a pod that uses our
// names for something of its own (refused).
func (p *Plan) alreadyInjected() (bool, error) {
	var ours []string
	for _, v := range p.pod.Spec.Volumes {
		if v.Name == VolumeName || v.Name == TokenVolumeName {
			ours = append(ours, "volume "+v.Name)
		}
	}
	for _, c := range p.pod.Spec.InitContainers {
		if c.Name == InitContainerName {
			ours = append(ours, "init container "+c.Name)
		}
	}
	if len(ours) == 0 {
		return false, nil
	}
	if raw, ok := p.pod.Annotations[v1alpha1.AnnotationStatus]; ok {
		var st v1alpha1.InjectionStatus
		if err := json.Unmarshal([]byte(raw), &st); err == nil && st.State == v1alpha1.StatusInjected {
			return true, nil
		}
	}
	return false, refuse("spec", "the pod already has %s, names that sandbox-injector reserves, "+
		"but no %s annotation saying it was injected; rename them", strings.Join(ours, " and "), v1alpha1.AnnotationStatus)
}

func (p *Plan) chooseTargets() error {
	containers := p.pod.Spec.Containers
	index := func(name string) int {
		return slices.IndexFunc(containers, func(c corev1.Container) bool { return c.Name == name })
	}
	if v, ok := p.pod.Annotations[v1alpha1.AnnotationContainers]; ok {
		key := "annotation " + v1alpha1.AnnotationContainers
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				return refuse(key, "value %q has an empty container name; give a comma-separated list of the pod's containers (%s)",
					v, containerNames(containers))
			}
			i := index(name)
			if i < 0 {
				return refuse(key, "container %q is not in the pod; its containers are %s", name, containerNames(containers))
			}
			if slices.Contains(p.targets, i) {
				return refuse(key, "container %q is listed twice", name)
			}
			p.targets = append(p.targets, i)
		}
		slices.Sort(p.targets)
		return nil
	}
	if name, ok := p.pod.Annotations[v1alpha1.AnnotationDefaultContainer]; ok {
		if i := index(name); i >= 0 {
			p.targets = []int{i}
			return nil
		}
		p.warnings = append(p.warnings, fmt.Sprintf("annotation %s names container %q, which is not in the pod; wrapping the first container, %q",
			v1alpha1.AnnotationDefaultContainer, name, containers[0].Name))
	}
	p.targets = []int{0}
	return nil
}

func (p *Plan) checkMounts() error {
	for _, i := range p.targets {
		c := &p.pod.Spec.Containers[i]
		for _, m := range c.VolumeMounts {
			for _, ours := range []string{MountPath, TokenMountPath} {
				if m.MountPath == ours || strings.HasPrefix(m.MountPath, ours+"/") || strings.HasPrefix(ours, strings.TrimSuffix(m.MountPath, "/")+"/") && m.MountPath != "/" {
					return refuse(fmt.Sprintf("spec.containers[%s].volumeMounts", c.Name),
						"mount path %q clashes with %q, where sandbox-injector mounts the runner", m.MountPath, ours)
				}
			}
		}
	}
	return nil
}

func containerNames(cs []corev1.Container) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = fmt.Sprintf("%q", c.Name)
	}
	return strings.Join(names, ", ")
}
