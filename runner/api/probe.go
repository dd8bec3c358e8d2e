package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Restart policies of the runner (flag --restart-policy): what it does, in
// place, when its child exits. They mean what a pod's spec.restartPolicy
// means to the kubelet.
const (
	// RestartAlways restarts the child whatever its exit code.
	RestartAlways = "Always"
	// RestartOnFailure restarts the child when it failed: a non-zero exit
	// code, a signal, or a kill by the liveness probe.
	RestartOnFailure = "OnFailure"
	// RestartNever leaves the child exited; the runner keeps serving (server
	// mode) or exits with the child's code (wrap mode). The default.
	RestartNever = "Never"
)

// RestartPolicies lists every restart policy, for messages and validation.
var RestartPolicies = []string{RestartAlways, RestartOnFailure, RestartNever}

// Reasons of ExitStatus.Reason and of the restarts metric.
const (
	// ExitReasonExited: the child ended on its own, with an exit code.
	ExitReasonExited = "exited"
	// ExitReasonLiveness: the runner killed the child because its liveness
	// probe failed FailureThreshold times in a row.
	ExitReasonLiveness = "liveness"
	// ExitReasonKilled: a signal the runner did not send for the liveness
	// probe ended the child (the OOM killer, a user, a forwarded signal).
	ExitReasonKilled = "killed"
)

// ExitStatus is how the supervised command last ended.
type ExitStatus struct {
	// Code is the exit status; 128+N when signal N killed it.
	Code int `json:"code"`
	// Signal names the signal that killed it ("SIGKILL"); empty when it
	// exited.
	Signal string `json:"signal,omitempty"`
	// Reason is ExitReasonExited, ExitReasonLiveness or ExitReasonKilled.
	Reason string `json:"reason"`
}

// Probe is a Kubernetes core/v1 Probe, the same JSON, for the runner's
// liveness probe of its child. It mirrors the API type with the standard
// library only, so the runner stays free of Kubernetes libraries. The runner
// runs exec, httpGet and tcpSocket handlers; grpc and HTTP/2 need an HTTP/2
// client, which the runner leaves out, and are refused by Validate.
type Probe struct {
	Exec      *ExecAction      `json:"exec,omitempty"`
	HTTPGet   *HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket *TCPSocketAction `json:"tcpSocket,omitempty"`
	GRPC      *GRPCAction      `json:"grpc,omitempty"`
	// InitialDelaySeconds is how long after the child started the first
	// probe runs; default 0.
	InitialDelaySeconds int32 `json:"initialDelaySeconds,omitempty"`
	// TimeoutSeconds bounds one probe; default 1, at least 1.
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
	// PeriodSeconds is the time between probes; default 10, at least 1.
	PeriodSeconds int32 `json:"periodSeconds,omitempty"`
	// SuccessThreshold must be 1 for a liveness probe (default 1).
	SuccessThreshold int32 `json:"successThreshold,omitempty"`
	// FailureThreshold is how many failures in a row kill the child;
	// default 3, at least 1.
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
	// TerminationGracePeriodSeconds, when set (> 0), replaces the runner's
	// grace period between SIGTERM and SIGKILL for a kill by this probe.
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`
}

// ExecAction runs Command (no shell) in the child's environment and working
// directory; exit code 0 is a success.
type ExecAction struct {
	Command []string `json:"command,omitempty"`
}

// HTTPGetAction is a GET whose status 200-399 is a success.
type HTTPGetAction struct {
	// Path defaults to "/".
	Path string `json:"path,omitempty"`
	Port Port   `json:"port"`
	// Host defaults to 127.0.0.1 in the runner (the kubelet uses the pod IP;
	// the runner shares the pod's network).
	Host string `json:"host,omitempty"`
	// Scheme is HTTP (default) or HTTPS (certificates are not verified, as
	// the kubelet does).
	Scheme      string       `json:"scheme,omitempty"`
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
	// Protocol is HTTP1 (default); HTTP2 is refused by the runner.
	Protocol *string `json:"protocol,omitempty"`
}

// HTTPHeader is one request header of an HTTPGetAction.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPSocketAction succeeds when a TCP connection opens.
type TCPSocketAction struct {
	Port Port   `json:"port"`
	Host string `json:"host,omitempty"`
}

// GRPCAction is the grpc handler of the API type; the runner refuses it.
type GRPCAction struct {
	Port    int32   `json:"port"`
	Service *string `json:"service,omitempty"`
	Mode    *string `json:"mode,omitempty"`
}

// Port is a port number or a port name, like Kubernetes' IntOrString: a
// JSON number or a JSON string.
type Port struct {
	Number int32
	Name   string
}

// MarshalJSON writes the number, or the name when the port has one.
func (p Port) MarshalJSON() ([]byte, error) {
	if p.Name != "" {
		return json.Marshal(p.Name)
	}
	return strconv.AppendInt(nil, int64(p.Number), 10), nil
}

// UnmarshalJSON reads a number or a string.
func (p *Port) UnmarshalJSON(b []byte) error {
	*p = Port{}
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &p.Name)
	}
	return json.Unmarshal(b, &p.Number)
}

// String is the number or the name.
func (p Port) String() string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(int(p.Number))
}

// SetDefaults applies the API server's defaults (SetDefaults_Probe and
// SetDefaults_HTTPGetAction): timeoutSeconds 1, periodSeconds 10,
// successThreshold 1, failureThreshold 3 when zero; httpGet path "/" and
// scheme HTTP when empty.
func (p *Probe) SetDefaults() {
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
			h.Scheme = "HTTP"
		}
	}
}

// Validate checks a defaulted probe with the API server's rules for a
// liveness probe (field paths and wording as the API server gives them),
// then what the runner cannot do: grpc, HTTP/2 and named ports (which only
// the pod's container spec can resolve; the webhook resolves them).
func (p *Probe) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	handlers := 0
	for _, h := range []struct {
		name string
		set  bool
	}{{"exec", p.Exec != nil}, {"httpGet", p.HTTPGet != nil}, {"tcpSocket", p.TCPSocket != nil}, {"grpc", p.GRPC != nil}} {
		if !h.set {
			continue
		}
		if handlers++; handlers > 1 {
			bad(h.name, "Forbidden: may not specify more than 1 handler type")
		}
	}
	if handlers == 0 {
		errs = append(errs, errors.New("Required value: must specify a handler type"))
	}
	if p.Exec != nil && len(p.Exec.Command) == 0 {
		bad("exec.command", "Required value")
	}
	if h := p.HTTPGet; h != nil {
		if h.Path == "" {
			bad("httpGet.path", "Required value")
		}
		validatePort(h.Port, "httpGet.port", bad)
		if h.Scheme != "HTTP" && h.Scheme != "HTTPS" {
			bad("httpGet.scheme", `Unsupported value: %q: supported values: "HTTP", "HTTPS"`, h.Scheme)
		}
		for _, hd := range h.HTTPHeaders {
			if !isHeaderName(hd.Name) {
				bad("httpGet.httpHeaders", "Invalid value: %q: a valid HTTP header must consist of alphanumeric characters or '-'", hd.Name)
			}
		}
		if h.Protocol != nil {
			switch *h.Protocol {
			case "HTTP1":
			case "HTTP2":
				bad("httpGet.protocol", "HTTP2 is not supported by the runner, which speaks HTTP/1.1 only; use HTTP1 or an exec probe")
			default:
				bad("httpGet.protocol", `Unsupported value: %q: supported values: "HTTP1", "HTTP2"`, *h.Protocol)
			}
		}
	}
	if t := p.TCPSocket; t != nil {
		validatePort(t.Port, "tcpSocket.port", bad)
	}
	if p.GRPC != nil {
		bad("grpc", "grpc probes are not supported by the runner, which has no HTTP/2 client; use an exec probe running a gRPC health client, or httpGet")
	}
	for _, f := range []struct {
		name string
		v    int32
	}{{"initialDelaySeconds", p.InitialDelaySeconds}, {"timeoutSeconds", p.TimeoutSeconds}, {"periodSeconds", p.PeriodSeconds}, {"successThreshold", p.SuccessThreshold}, {"failureThreshold", p.FailureThreshold}} {
		if f.v < 0 {
			bad(f.name, "Invalid value: %d: must be greater than or equal to 0", f.v)
		}
	}
	if g := p.TerminationGracePeriodSeconds; g != nil && *g <= 0 {
		bad("terminationGracePeriodSeconds", "Invalid value: %d: must be greater than 0", *g)
	}
	if p.SuccessThreshold != 1 {
		bad("successThreshold", "Invalid value: %d: must be 1", p.SuccessThreshold)
	}
	// Zero survives defaulting only where the caller skipped SetDefaults.
	if p.TimeoutSeconds == 0 || p.PeriodSeconds == 0 || p.FailureThreshold == 0 {
		errs = append(errs, errors.New("timeoutSeconds, periodSeconds and failureThreshold must be at least 1 (apply the defaults first)"))
	}
	return errors.Join(errs...)
}

func validatePort(p Port, field string, bad func(string, string, ...any)) {
	if p.Name != "" {
		bad(field, "named port %q: the runner needs a port number (the webhook resolves names against the container's ports)", p.Name)
		return
	}
	if p.Number < 1 || p.Number > 65535 {
		bad(field, "Invalid value: %d: must be between 1 and 65535, inclusive", p.Number)
	}
}

// isHeaderName reports whether s is an HTTP header field name (RFC 7230
// token) as the API server checks it.
func isHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ParseProbe reads a Probe from JSON as strictly as a request body
// (DecodeStrict: field names as written, each once, nothing after the
// object), applies the defaults and validates it.
func ParseProbe(s string) (*Probe, error) {
	var p Probe
	if err := decodeStrict(strings.NewReader(s), &p, "probe"); err != nil {
		return nil, fmt.Errorf("decoding probe: %w", err)
	}
	p.SetDefaults()
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("validating probe: %w", err)
	}
	return &p, nil
}

// Encode is the probe's compact JSON, as a flag value.
func (p *Probe) Encode() string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p)
	return strings.TrimSuffix(b.String(), "\n")
}
