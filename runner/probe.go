package runner

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"sandbox.io/injector/runner/api"
)

// maxProbeOutput caps the output of a probe kept for the log, as the
// kubelet's 10 KiB.
const maxProbeOutput = 10 << 10

// probeUserAgent is what the kubelet sends (kube-probe/<major>.<minor>).
const probeUserAgent = "kube-probe/1.37"

// prober runs one liveness probe of the child. Exec probes run in the
// child's environment and working directory, through the executor, so a
// timeout kills their whole process group.
type prober struct {
	probe *api.Probe
	exec  *executor
	dir   string
	env   []string
}

// run runs the probe once; ok is its outcome, output what to log (the
// command's output, the HTTP status line, or why it failed).
func (p *prober) run(ctx context.Context) (ok bool, output string) {
	timeout := time.Duration(p.probe.TimeoutSeconds) * time.Second
	switch {
	case p.probe.Exec != nil:
		return p.runExec(ctx, timeout)
	case p.probe.HTTPGet != nil:
		return p.runHTTP(ctx, timeout)
	case p.probe.TCPSocket != nil:
		t := p.probe.TCPSocket
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, "tcp", hostPort(t.Host, t.Port))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	}
	return false, "no handler"
}

func (p *prober) runExec(ctx context.Context, timeout time.Duration) (bool, string) {
	argv := p.probe.Exec.Command
	c := &capture{limit: maxProbeOutput}
	req := &api.ExecuteRequest{Argv: argv, TimeoutMs: timeout.Milliseconds()}
	res := p.exec.run(ctx, execution{req: req, sink: c}, argv, p.dir, p.env)
	out := string(c.out) + string(c.err)
	switch {
	case res.Error != "":
		return false, res.Error
	case res.TimedOut:
		return false, fmt.Sprintf("command timed out after %s: %s", timeout, out)
	case res.ExitCode != 0:
		return false, fmt.Sprintf("exit code %d: %s", res.ExitCode, out)
	}
	return true, out
}

// runHTTP sends one GET and reads the status line: 200-399 is a success.
// Redirects are not followed (the kubelet follows those to the same host);
// their 3xx counts as the success the kubelet reports for the others.
func (p *prober) runHTTP(ctx context.Context, timeout time.Duration) (bool, string) {
	h := p.probe.HTTPGet
	addr := hostPort(h.Host, h.Port)
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, err.Error()
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if h.Scheme == "HTTPS" {
		// The kubelet does not verify probe certificates either.
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: hostOnly(h.Host)}) //nolint:gosec // as the kubelet
		if err := tc.HandshakeContext(ctx); err != nil {
			return false, fmt.Sprintf("TLS handshake: %v", err)
		}
		conn = tc
	}
	var b strings.Builder
	path := h.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	host, ua, accept := addr, probeUserAgent, "*/*"
	var extra []api.HTTPHeader
	for _, hd := range h.HTTPHeaders {
		switch strings.ToLower(hd.Name) {
		case "host":
			host = hd.Value
		case "user-agent":
			ua = hd.Value
		case "accept":
			accept = hd.Value
		default:
			extra = append(extra, hd)
		}
	}
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, host)
	if ua != "" {
		fmt.Fprintf(&b, "User-Agent: %s\r\n", ua)
	}
	if accept != "" {
		fmt.Fprintf(&b, "Accept: %s\r\n", accept)
	}
	for _, hd := range extra {
		fmt.Fprintf(&b, "%s: %s\r\n", hd.Name, strings.NewReplacer("\r", "", "\n", "").Replace(hd.Value))
	}
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return false, err.Error()
	}
	line, err := bufio.NewReaderSize(conn, 512).ReadString('\n')
	if err != nil {
		return false, fmt.Sprintf("reading the status line: %v", err)
	}
	line = strings.TrimRight(line, "\r\n")
	_, rest, _ := strings.Cut(line, " ")
	code, err := strconv.Atoi(strings.SplitN(rest, " ", 2)[0])
	if err != nil || !strings.HasPrefix(line, "HTTP/") {
		return false, fmt.Sprintf("malformed status line %q", line)
	}
	return code >= 200 && code < 400, line
}

// hostPort joins a probe's host (default 127.0.0.1: the runner shares the
// pod's network, where the kubelet would use the pod IP) and port.
func hostPort(host string, port api.Port) string {
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port.Number)))
}

func hostOnly(host string) string {
	if host == "" {
		return "127.0.0.1"
	}
	return host
}
