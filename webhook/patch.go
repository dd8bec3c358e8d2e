package webhook

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner/api"
)

// ImageCommand is an image's ENTRYPOINT and CMD, as its config says.
type ImageCommand struct {
	Entrypoint []string
	Cmd        []string
}

// Lookup is the outcome of reading one image's command from its registry.
type Lookup struct {
	Command ImageCommand
	// Err is why the command could not be read; nil on success.
	Err error
}

// Result is what a mutation does to a pod.
type Result struct {
	// Patch are the JSON patch operations, against the pod as it was sent.
	// Empty when the pod was already injected.
	Patch []jsonpatch.Operation
	// Status is the value written to the status annotation.
	Status v1alpha1.InjectionStatus
	// Warnings are for the user (admission warnings, which kubectl prints).
	Warnings []string
	// AlreadyInjected is true when the pod needed no change.
	AlreadyInjected bool
}

// Mutate is the whole pure mutation: NewPlan, then Patch. lookups maps an
// image reference to its command, for the images Plan.ImagesToLookUp names;
// a missing entry counts as a failed lookup.
func Mutate(pod *corev1.Pod, cfg *Config, lookups map[string]Lookup) (*Result, error) {
	p, err := NewPlan(pod, cfg)
	if err != nil {
		return nil, err
	}
	return p.Patch(lookups)
}

// Patch builds the operations that inject the runner. Arrays the pod does
// not have are created whole; existing ones are appended to (the init
// container is inserted first), so nothing of the original is re-encoded.
func (p *Plan) Patch(lookups map[string]Lookup) (*Result, error) {
	res := &Result{Warnings: append([]string(nil), p.warnings...)}
	if p.injected {
		res.AlreadyInjected = true
		return res, nil
	}
	ops := make([]jsonpatch.Operation, 0, 8+6*len(p.targets))
	ops = p.podOps(ops)
	ports := newPortAllocator(p.pod, p.cfg.RunnerPort)
	status := v1alpha1.InjectionStatus{
		State:         v1alpha1.StatusInjected,
		RunnerVersion: p.cfg.RunnerVersion,
		RunnerImage:   p.cfg.RunnerImage,
		Method:        p.Method,
	}
	for _, i := range p.targets {
		status.Containers = append(status.Containers, p.pod.Spec.Containers[i].Name)
		name, number := ports.next()
		var warning string
		var err error
		ops, warning, err = p.containerOps(ops, i, name, number, lookups)
		if err != nil {
			return nil, err
		}
		if warning != "" {
			res.Warnings = append(res.Warnings, warning)
			status.Warnings = append(status.Warnings, warning)
		}
	}
	ops, err := p.annotationOps(ops, status)
	if err != nil {
		return nil, err
	}
	res.Patch = ops
	res.Status = status
	return res, nil
}

// podOps adds the runner's volumes and, unless the kubelet mounts the
// runner image itself, the init container that copies the runner.
func (p *Plan) podOps(ops []jsonpatch.Operation) []jsonpatch.Operation {
	spec := &p.pod.Spec
	ops = appendOp(ops, "/spec/volumes", spec.Volumes == nil, p.volumes()...)
	switch {
	case p.Method == v1alpha1.MethodImageVolume: // the kubelet mounts the runner image itself
	case spec.InitContainers == nil:
		ops = append(ops, add("/spec/initContainers", []any{p.initContainer()}))
	default:
		ops = append(ops, add("/spec/initContainers/0", p.initContainer()))
	}
	return ops
}

// containerOps adds what wraps container i in the runner, listening on the
// port named portName: its command (and args), mounts, port and readiness
// probe. warning is set when the runner starts with no child (childCommand).
func (p *Plan) containerOps(ops []jsonpatch.Operation, i int, portName string, port int32, lookups map[string]Lookup) (_ []jsonpatch.Operation, warning string, err error) {
	c := &p.pod.Spec.Containers[i]
	base := "/spec/containers/" + strconv.Itoa(i)
	child, setArgs, warning, err := p.childCommand(c, lookups)
	if err != nil {
		return nil, "", err
	}
	cmd, err := p.runnerCommand(c, port, child, warning == "")
	if err != nil {
		return nil, "", err
	}
	if warning != "" && c.Args != nil {
		ops = append(ops, jsonpatch.Operation{Operation: "remove", Path: base + "/args"})
	}
	ops = append(ops, add(base+"/command", cmd))
	if setArgs != nil {
		ops = append(ops, add(base+"/args", setArgs))
	}
	ops = appendOp(ops, base+"/volumeMounts", c.VolumeMounts == nil, p.runnerMounts()...)
	ops = appendOp(ops, base+"/ports", c.Ports == nil,
		corev1.ContainerPort{Name: portName, ContainerPort: port, Protocol: corev1.ProtocolTCP})
	if c.ReadinessProbe == nil {
		ops = append(ops, add(base+"/readinessProbe", readinessProbe(portName)))
	}
	return ops, warning, nil
}

// runnerCommand is the container's new command: the runner with its flags,
// then, when withChild, "--" and the child's argv prefix.
func (p *Plan) runnerCommand(c *corev1.Container, port int32, child []string, withChild bool) ([]string, error) {
	cmd := []string{RunnerPath, "run",
		"--mode=" + string(p.mode),
		"--listen=:" + strconv.Itoa(int(port)),
	}
	switch {
	case p.pool:
		cmd = append(cmd, pool.ClaimVerifierFlag+p.cfg.ClaimKeys.Verifier(p.pod.Namespace, p.nonce))
	default:
		cmd = append(cmd, "--token-file="+TokenMountPath+"/"+v1alpha1.TokenSecretKey)
	}
	if p.insecureLoopback {
		cmd = append(cmd, "--insecure-loopback")
	}
	if !withChild {
		return cmd, nil
	}
	if !p.noChild {
		flags, err := p.supervisionFlags(c)
		if err != nil {
			return nil, err
		}
		cmd = append(cmd, flags...)
	}
	return append(append(cmd, "--"), child...), nil
}

// runnerMounts are the mounts of a wrapped container: the runner, and the
// token Secret unless the pod is a pool's (whose runner holds no token).
func (p *Plan) runnerMounts() []any {
	runner := corev1.VolumeMount{Name: VolumeName, MountPath: MountPath, ReadOnly: true}
	if p.Method == v1alpha1.MethodImageVolume {
		runner.SubPath = ImageRunnerDir
	}
	mounts := []any{runner}
	if !p.pool {
		mounts = append(mounts, corev1.VolumeMount{Name: TokenVolumeName, MountPath: TokenMountPath, ReadOnly: true})
	}
	return mounts
}

// annotationOps writes the status annotation (and the claim nonce, when the
// plan made a new one).
func (p *Plan) annotationOps(ops []jsonpatch.Operation, status v1alpha1.InjectionStatus) ([]jsonpatch.Operation, error) {
	raw, err := json.Marshal(status)
	if err != nil {
		return nil, fmt.Errorf("encoding status annotation: %w", err)
	}
	if p.pod.Annotations == nil {
		annotations := map[string]string{v1alpha1.AnnotationStatus: string(raw)}
		if p.addNonce {
			annotations[v1alpha1.AnnotationClaimNonce] = p.nonce
		}
		return append(ops, add("/metadata/annotations", annotations)), nil
	}
	ops = append(ops, add("/metadata/annotations/"+escapePointer(v1alpha1.AnnotationStatus), string(raw)))
	if p.addNonce {
		ops = append(ops, add("/metadata/annotations/"+escapePointer(v1alpha1.AnnotationClaimNonce), p.nonce))
	}
	return ops, nil
}

// childCommand works out what the runner runs after "--". It returns the
// argv prefix (the original command or the image's ENTRYPOINT), the args to
// set when the pod had none, or a warning when the command cannot be
// rebuilt (server mode; wrap mode is refused instead).
func (p *Plan) childCommand(c *corev1.Container, lookups map[string]Lookup) (child, setArgs []string, warning string, err error) {
	if len(c.Command) > 0 {
		return c.Command, nil, "", nil
	}
	if p.noChild {
		return nil, nil, "", nil
	}
	l, ok := lookups[c.Image]
	switch {
	case !ok:
		l.Err = fmt.Errorf("image %s was not looked up", c.Image)
	case l.Err == nil && len(l.Command.Entrypoint) == 0 && len(l.Command.Cmd) == 0 && len(c.Args) == 0:
		l.Err = fmt.Errorf("image %s has neither ENTRYPOINT nor CMD", c.Image)
	}
	if l.Err != nil {
		if p.mode == v1alpha1.ModeWrap {
			return nil, nil, "", refuse(fmt.Sprintf("spec.containers[%s].command", c.Name),
				"mode %s needs the original command, but the image's ENTRYPOINT and CMD could not be read (%v); set command in the pod spec",
				v1alpha1.ModeWrap, l.Err)
		}
		w := fmt.Sprintf("container %s: the runner starts with no child process because the image's ENTRYPOINT and CMD could not be read (%v)",
			c.Name, l.Err)
		if len(c.Args) > 0 {
			w += fmt.Sprintf("; its args %q were removed, set command to keep them", c.Args)
		}
		return nil, nil, w, nil
	}
	if c.Args == nil && len(l.Command.Cmd) > 0 {
		setArgs = l.Command.Cmd
	}
	return l.Command.Entrypoint, setArgs, "", nil
}

// volumes are the runner volume and the optional token Secret volume.
func (p *Plan) volumes() []any {
	enc := p.cfg.encoded
	var runner, token any
	switch enc {
	case nil: // a Config that did not go through Complete
		runner = runnerVolume()
		if p.Method == v1alpha1.MethodImageVolume {
			runner = runnerImageVolume(p.cfg.RunnerImage)
		}
		token = tokenVolume(p.tokenSecret)
	default:
		runner = enc.runnerVolume
		if p.Method == v1alpha1.MethodImageVolume {
			runner = enc.imageVolume
		}
		token = enc.defaultTokenVolume
		if p.tokenSecret != p.cfg.TokenSecret {
			token = tokenVolume(p.tokenSecret)
		}
	}
	if p.pool {
		// A pool pod's runner holds no token of any tenant: only the claim
		// verifier in its command line.
		return []any{runner}
	}
	return []any{runner, token}
}

// runnerImageVolume mounts the runner image read-only (zero copy): the
// kubelet pulls it like a container image, with the pod's pull secrets.
func runnerImageVolume(image string) corev1.Volume {
	return corev1.Volume{Name: VolumeName, VolumeSource: corev1.VolumeSource{
		Image: &corev1.ImageVolumeSource{Reference: image, PullPolicy: corev1.PullIfNotPresent},
	}}
}

func (p *Plan) initContainer() any {
	if p.cfg.encoded == nil {
		return initContainer(p.cfg)
	}
	return p.cfg.encoded.initContainer
}

func runnerVolume() corev1.Volume {
	return corev1.Volume{Name: VolumeName, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{},
	}}
}

func tokenVolume(secret string) corev1.Volume {
	return corev1.Volume{Name: TokenVolumeName, VolumeSource: corev1.VolumeSource{
		Secret: &corev1.SecretVolumeSource{
			SecretName: secret,
			Items:      []corev1.KeyToPath{{Key: v1alpha1.TokenSecretKey, Path: v1alpha1.TokenSecretKey}},
			Optional:   ptr.To(true),
		},
	}}
}

func initContainer(cfg *Config) corev1.Container {
	return corev1.Container{
		Name:                     InitContainerName,
		Image:                    cfg.RunnerImage,
		ImagePullPolicy:          corev1.PullIfNotPresent,
		Command:                  []string{ImageRunnerPath, "install", RunnerPath},
		VolumeMounts:             []corev1.VolumeMount{{Name: VolumeName, MountPath: MountPath}},
		Resources:                cfg.InitResources,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext:          restrictedSecurityContext(),
	}
}

// restrictedSecurityContext meets the Pod Security Standard "restricted"
// on its own, whatever the pod-level settings are.
func restrictedSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To(runnerUID),
		RunAsGroup:               ptr.To(runnerUID),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Privileged:               ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func readinessProbe(port string) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: api.PathReadyz, Port: intstr.FromString(port), Scheme: corev1.URISchemeHTTP,
		}},
		PeriodSeconds:    1,
		TimeoutSeconds:   1,
		SuccessThreshold: 1,
		FailureThreshold: 3,
	}
}

// portAllocator hands out runner port names and numbers that no container
// of the pod uses yet.
type portAllocator struct {
	names   map[string]bool
	numbers map[int32]bool
	nextNum int32
	count   int
}

func newPortAllocator(pod *corev1.Pod, first int32) *portAllocator {
	a := &portAllocator{names: map[string]bool{}, numbers: map[int32]bool{}, nextNum: first}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			for _, port := range c.Ports {
				if port.Name != "" {
					a.names[port.Name] = true
				}
				a.numbers[port.ContainerPort] = true
			}
		}
	}
	return a
}

func (a *portAllocator) next() (string, int32) {
	var name string
	for {
		a.count++
		name = portName(a.count)
		if !a.names[name] {
			break
		}
	}
	a.names[name] = true
	for a.numbers[a.nextNum] || a.nextNum < 1 {
		a.nextNum++
		if a.nextNum > 65535 {
			a.nextNum = 1024
		}
	}
	num := a.nextNum
	a.numbers[num] = true
	return name, num
}

// portName is the n-th (from 1) runner port name. Port names are limited to
// 15 characters, so from the tenth on the name is shortened.
func portName(n int) string {
	switch {
	case n == 1:
		return api.PortName
	case n < 10:
		return api.PortName + strconv.Itoa(n)
	default:
		return "sandbox-rnr" + strconv.Itoa(n)
	}
}

func add(path string, value any) jsonpatch.Operation {
	return jsonpatch.Operation{Operation: "add", Path: path, Value: value}
}

// appendOp adds values to the array at path: the whole array when the pod
// has none (create), else one "append" operation per value.
func appendOp(ops []jsonpatch.Operation, path string, create bool, values ...any) []jsonpatch.Operation {
	if create {
		return append(ops, add(path, values))
	}
	for _, v := range values {
		ops = append(ops, add(path+"/-", v))
	}
	return ops
}

// pointerEscaper escapes a JSON pointer token. It is built once: a
// Replacer builds its lookup table on first use, 6 KiB that were allocated
// on every admission when the Replacer was made per call.
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// escapePointer escapes a JSON pointer token (RFC 6901).
func escapePointer(s string) string {
	return pointerEscaper.Replace(s)
}

// EncodePatch is json.Marshal(ops), byte for byte, at a fraction of its
// cost: json.Marshal calls each Operation's MarshalJSON, which marshals the
// operation again, and validates and compacts every value twice over,
// including the parts Config.Complete encoded once. Here each operation is
// written out directly and a json.RawMessage value, which must be the
// output of json.Marshal (compact, HTML-escaped), is copied as it is.
func EncodePatch(ops []jsonpatch.Operation) ([]byte, error) {
	if ops == nil {
		return []byte("null"), nil
	}
	buf := make([]byte, 0, 256*len(ops)+2)
	buf = append(buf, '[')
	for i, op := range ops {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"op":`...)
		buf = appendJSONString(buf, op.Operation)
		buf = append(buf, `,"path":`...)
		buf = appendJSONString(buf, op.Path)
		if op.Value == nil && op.Operation != "add" && op.Operation != "replace" {
			buf = append(buf, '}')
			continue
		}
		buf = append(buf, `,"value":`...)
		var err error
		if buf, err = appendJSONValue(buf, op.Value); err != nil {
			return nil, fmt.Errorf("encoding patch operation %s %s: %w", op.Operation, op.Path, err)
		}
		buf = append(buf, '}')
	}
	return append(buf, ']'), nil
}

// appendJSONValue appends v as json.Marshal encodes it, copying
// json.RawMessage values (also inside a []any) as they are.
func appendJSONValue(buf []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case json.RawMessage:
		if len(v) == 0 {
			return append(buf, "null"...), nil
		}
		return append(buf, v...), nil
	case string:
		return appendJSONString(buf, v), nil
	case []any:
		if v == nil {
			return append(buf, "null"...), nil
		}
		buf = append(buf, '[')
		for i, e := range v {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = appendJSONValue(buf, e); err != nil {
				return nil, err
			}
		}
		return append(buf, ']'), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(buf, raw...), nil
}

// appendJSONString appends s as json.Marshal encodes it: directly when it
// holds nothing that needs escaping (always, for the paths we write).
func appendJSONString(buf []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			raw, _ := json.Marshal(s) // a string always encodes
			return append(buf, raw...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
