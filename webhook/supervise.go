package webhook

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/runner/api"
)

// supervision is what the pod asks of the runner's child supervision: the
// restart policy (sandbox.io/restart-policy, else the pod's own) and an
// optional liveness probe (sandbox.io/liveness-probe), both passed to the
// runner as flags.
type supervision struct {
	restartPolicy string
	// explicit is true when the annotation chose the policy.
	explicit bool
	probe    *corev1.Probe // defaulted and valid; nil without the annotation
}

// readSupervision validates the two annotations. The probe is decoded
// strictly (an unknown field is refused, as kubectl's strict validation
// does), defaulted and validated with the API server's rules for a
// container's livenessProbe, then with what the runner cannot do (grpc,
// HTTP/2).
func readSupervision(pod *corev1.Pod) (supervision, error) {
	sv := supervision{restartPolicy: string(pod.Spec.RestartPolicy)}
	if sv.restartPolicy == "" {
		sv.restartPolicy = v1alpha1.RestartAlways // the API server's default
	}
	if v, ok := pod.Annotations[v1alpha1.AnnotationRestartPolicy]; ok {
		if !slices.Contains(v1alpha1.RestartPolicies, v) {
			return sv, refuse("annotation "+v1alpha1.AnnotationRestartPolicy, "value %q is not allowed; use %s",
				v, quoteList(v1alpha1.RestartPolicies))
		}
		sv.restartPolicy, sv.explicit = v, true
	}
	if v, ok := pod.Annotations[v1alpha1.AnnotationLivenessProbe]; ok {
		p, err := parseLivenessProbe(v)
		if err != nil {
			return sv, refuse("annotation "+v1alpha1.AnnotationLivenessProbe, "%v", err)
		}
		sv.probe = p
	}
	return sv, nil
}

// parseLivenessProbe decodes, defaults and validates a probe as the API
// server does for spec.containers[*].livenessProbe.
func parseLivenessProbe(s string) (*corev1.Probe, error) {
	var p corev1.Probe
	strict, err := kjson.UnmarshalStrict([]byte(s), &p)
	if err != nil {
		return nil, fmt.Errorf("is not a Probe in JSON: %w", err)
	}
	if len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		return nil, fmt.Errorf("is not a Probe: %s", strings.Join(msgs, "; "))
	}
	if p.HTTPGet != nil && p.HTTPGet.Protocol != nil && *p.HTTPGet.Protocol == corev1.HTTPProtocolHTTP2 {
		return nil, fmt.Errorf("httpGet.protocol HTTP2 is not supported by the runner, which speaks HTTP/1.1 only")
	}
	setProbeDefaults(&p)
	if errs := validateLivenessProbe(&p, field.NewPath("livenessProbe")); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	if p.GRPC != nil {
		return nil, fmt.Errorf("grpc probes are not supported by the runner, which has no HTTP/2 client; use an exec probe running a gRPC health client, or httpGet")
	}
	return &p, nil
}

// setProbeDefaults is what the API server does to a probe before it
// validates it: SetDefaults_Probe, SetDefaults_HTTPGetAction and the
// generated default of grpc.service (pkg/apis/core/v1), and dropping
// httpGet.protocol and grpc.mode, whose feature gates are off by default
// (pkg/api/pod: dropDisabledFields). TestLivenessProbeRulesMatchAPIServer
// holds both to the same results.
func setProbeDefaults(p *corev1.Probe) {
	if h := p.HTTPGet; h != nil {
		h.Protocol = nil
	}
	if g := p.GRPC; g != nil {
		g.Mode = nil
		if g.Service == nil {
			g.Service = new(string)
		}
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	if h := p.HTTPGet; h != nil {
		if h.Path == "" {
			h.Path = "/"
		}
		if h.Scheme == "" {
			h.Scheme = corev1.URISchemeHTTP
		}
	}
}

// validateLivenessProbe is the API server's validateLivenessProbe
// (pkg/apis/core/validation: validateProbe, validateHandler and the handler
// checks), on the v1 type, with the same apimachinery checks and messages,
// for a probe that went through setProbeDefaults.
// TestLivenessProbeRulesMatchAPIServer compares both on a real API server.
func validateLivenessProbe(p *corev1.Probe, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	handlers := 0
	one := func(name string) bool {
		if handlers++; handlers > 1 {
			errs = append(errs, field.Forbidden(fld.Child(name), "may not specify more than 1 handler type"))
			return false
		}
		return true
	}
	if p.Exec != nil && one("exec") && len(p.Exec.Command) == 0 {
		errs = append(errs, field.Required(fld.Child("exec", "command"), ""))
	}
	if h := p.HTTPGet; h != nil && one("httpGet") {
		hf := fld.Child("httpGet")
		if h.Path == "" {
			errs = append(errs, field.Required(hf.Child("path"), ""))
		}
		errs = append(errs, validatePortNumOrName(h.Port, hf.Child("port"))...)
		schemes := sets.New(corev1.URISchemeHTTP, corev1.URISchemeHTTPS)
		if !schemes.Has(h.Scheme) {
			errs = append(errs, field.NotSupported(hf.Child("scheme"), h.Scheme, sets.List(schemes)))
		}
		for _, hd := range h.HTTPHeaders {
			for _, msg := range validation.IsHTTPHeaderName(hd.Name) {
				errs = append(errs, field.Invalid(hf.Child("httpHeaders"), hd.Name, msg))
			}
		}
	}
	if t := p.TCPSocket; t != nil && one("tcpSocket") {
		errs = append(errs, validatePortNumOrName(t.Port, fld.Child("tcpSocket", "port"))...)
	}
	if g := p.GRPC; g != nil && one("grpc") {
		errs = append(errs, validatePortNumOrName(intstr.FromInt32(g.Port), fld.Child("grpc", "port"))...)
	}
	if handlers == 0 {
		errs = append(errs, field.Required(fld, "must specify a handler type"))
	}
	for _, f := range []struct {
		name string
		v    int32
	}{{"initialDelaySeconds", p.InitialDelaySeconds}, {"timeoutSeconds", p.TimeoutSeconds}, {"periodSeconds", p.PeriodSeconds},
		{"successThreshold", p.SuccessThreshold}, {"failureThreshold", p.FailureThreshold}} {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(f.v), fld.Child(f.name))...)
	}
	if g := p.TerminationGracePeriodSeconds; g != nil && *g <= 0 {
		errs = append(errs, field.Invalid(fld.Child("terminationGracePeriodSeconds"), *g, "must be greater than 0"))
	}
	if p.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(fld.Child("successThreshold"), p.SuccessThreshold, "must be 1"))
	}
	return errs
}

func validatePortNumOrName(port intstr.IntOrString, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if port.Type == intstr.Int {
		for _, msg := range validation.IsValidPortNum(port.IntValue()) {
			errs = append(errs, field.Invalid(fld, port.IntValue(), msg))
		}
		return errs
	}
	for _, msg := range validation.IsValidPortName(port.StrVal) {
		errs = append(errs, field.Invalid(fld, port.StrVal, msg))
	}
	return errs
}

// runnerProbe converts a valid probe to the runner's form for container c,
// resolving a named port against c's ports as the kubelet does. A name c
// does not have is refused: the kubelet would fail every probe with it.
func runnerProbe(p *corev1.Probe, c *corev1.Container) (*api.Probe, error) {
	out := &api.Probe{
		InitialDelaySeconds:           p.InitialDelaySeconds,
		TimeoutSeconds:                p.TimeoutSeconds,
		PeriodSeconds:                 p.PeriodSeconds,
		SuccessThreshold:              p.SuccessThreshold,
		FailureThreshold:              p.FailureThreshold,
		TerminationGracePeriodSeconds: p.TerminationGracePeriodSeconds,
	}
	port := func(v intstr.IntOrString, fld string) (api.Port, error) {
		if v.Type == intstr.Int {
			return api.Port{Number: v.IntVal}, nil
		}
		for _, cp := range c.Ports {
			if cp.Name == v.StrVal {
				return api.Port{Number: cp.ContainerPort}, nil
			}
		}
		return api.Port{}, fmt.Errorf("%s: port name %q is not a port of container %s", fld, v.StrVal, c.Name)
	}
	var err error
	switch {
	case p.Exec != nil:
		out.Exec = &api.ExecAction{Command: p.Exec.Command}
	case p.HTTPGet != nil:
		h := p.HTTPGet
		out.HTTPGet = &api.HTTPGetAction{Path: h.Path, Host: h.Host, Scheme: string(h.Scheme)}
		if out.HTTPGet.Port, err = port(h.Port, "httpGet.port"); err != nil {
			return nil, err
		}
		for _, hd := range h.HTTPHeaders {
			out.HTTPGet.HTTPHeaders = append(out.HTTPGet.HTTPHeaders, api.HTTPHeader{Name: hd.Name, Value: hd.Value})
		}
	case p.TCPSocket != nil:
		out.TCPSocket = &api.TCPSocketAction{Host: p.TCPSocket.Host}
		if out.TCPSocket.Port, err = port(p.TCPSocket.Port, "tcpSocket.port"); err != nil {
			return nil, err
		}
	}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// checkSupervision refuses the annotations where they cannot apply: with
// sandbox.io/child: none (no child to restart or probe), a restart policy
// other than Never in wrap mode (the runner exits with its child; the pod's
// restartPolicy applies), and a probe whose named port a wrapped container
// lacks. It warns where a wrapped container has its own livenessProbe.
func (p *Plan) checkSupervision() error {
	_, hasPolicy := p.pod.Annotations[v1alpha1.AnnotationRestartPolicy]
	_, hasProbe := p.pod.Annotations[v1alpha1.AnnotationLivenessProbe]
	if p.noChild {
		for _, k := range []string{v1alpha1.AnnotationRestartPolicy, v1alpha1.AnnotationLivenessProbe} {
			if _, ok := p.pod.Annotations[k]; ok {
				return refuse("annotation "+k, "has no child to apply to with %s: %s; remove one of them",
					v1alpha1.AnnotationChild, v1alpha1.ChildNone)
			}
		}
		return nil
	}
	if hasPolicy && p.mode == v1alpha1.ModeWrap && p.sv.restartPolicy != v1alpha1.RestartNever {
		return refuse("annotation "+v1alpha1.AnnotationRestartPolicy,
			"value %q needs mode %s: mode %s exits with its child's exit code and the pod's spec.restartPolicy applies",
			p.sv.restartPolicy, v1alpha1.ModeServer, v1alpha1.ModeWrap)
	}
	if !hasProbe {
		return nil
	}
	for _, i := range p.targets {
		c := &p.pod.Spec.Containers[i]
		if _, err := runnerProbe(p.sv.probe, c); err != nil {
			return refuse("annotation "+v1alpha1.AnnotationLivenessProbe, "%v", err)
		}
		if c.LivenessProbe != nil {
			p.warnings = append(p.warnings, fmt.Sprintf("container %s has its own livenessProbe, which the kubelet keeps applying to the whole container; %s restarts only the runner's child, in place",
				c.Name, v1alpha1.AnnotationLivenessProbe))
		}
	}
	return nil
}

// supervisionFlags are the runner flags for container c: the restart policy
// in server mode, and the liveness probe.
func (p *Plan) supervisionFlags(c *corev1.Container) ([]string, error) {
	var flags []string
	if p.mode == v1alpha1.ModeServer {
		flags = append(flags, "--restart-policy="+p.sv.restartPolicy)
	}
	if p.sv.probe != nil {
		rp, err := runnerProbe(p.sv.probe, c)
		if err != nil {
			return nil, refuse("annotation "+v1alpha1.AnnotationLivenessProbe, "%v", err)
		}
		flags = append(flags, "--liveness-probe="+rp.Encode())
	}
	return flags, nil
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
