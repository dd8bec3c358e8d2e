package api

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProbeDefaults(t *testing.T) {
	t.Parallel()
	p, err := ParseProbe(`{"httpGet":{"port":8080}}`)
	if err != nil {
		t.Fatal(err)
	}
	want := &Probe{
		HTTPGet:        &HTTPGetAction{Path: "/", Port: Port{Number: 8080}, Scheme: "HTTP"},
		TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if got := p.Encode(); got != `{"httpGet":{"path":"/","port":8080,"scheme":"HTTP"},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3}` {
		t.Errorf("encoded %s", got)
	}
	back, err := ParseProbe(p.Encode())
	if err != nil || !cmp.Equal(p, back) {
		t.Errorf("round trip: %v %s", err, cmp.Diff(p, back))
	}
}

func TestParseProbeRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ probe, want string }{
		{`{}`, "must specify a handler type"},
		{`{"exec":{"command":["true"]},"tcpSocket":{"port":1}}`, "tcpSocket: Forbidden: may not specify more than 1 handler type"},
		{`{"exec":{}}`, "exec.command: Required value"},
		{`{"httpGet":{"port":0}}`, "httpGet.port: Invalid value: 0"},
		{`{"httpGet":{"port":"http"}}`, `httpGet.port: named port "http"`},
		{`{"httpGet":{"port":80,"scheme":"FTP"}}`, `httpGet.scheme: Unsupported value: "FTP"`},
		{`{"httpGet":{"port":80,"httpHeaders":[{"name":"Bad Header","value":"x"}]}}`, `httpGet.httpHeaders: Invalid value: "Bad Header"`},
		{`{"httpGet":{"port":80,"protocol":"HTTP2"}}`, "HTTP2 is not supported by the runner"},
		{`{"grpc":{"port":9000}}`, "grpc probes are not supported by the runner, which has no HTTP/2 client"},
		{`{"tcpSocket":{"port":80},"successThreshold":2}`, "successThreshold: Invalid value: 2: must be 1"},
		{`{"tcpSocket":{"port":80},"periodSeconds":-1}`, "periodSeconds: Invalid value: -1: must be greater than or equal to 0"},
		{`{"tcpSocket":{"port":80},"terminationGracePeriodSeconds":0}`, "terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0"},
		{`{"tcpSocket":{"port":80},"periodSecond":5}`, `unknown field "periodSecond"`},
		{`{"tcpSocket":{"port":80}} {}`, "trailing data"},
		{`{"tcpSocket":{"port":80}}]`, "trailing data"},
		{`{"TCPSOCKET":{"port":80}}`, `unknown field "TCPSOCKET" in probe (names are case sensitive)`},
		{`{"tcpSocket":{"port":80},"tcpSocket":{"port":81}}`, `key "tcpSocket" appears twice in probe`},
	} {
		_, err := ParseProbe(tc.probe)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseProbe(%s) = %v, want an error containing %q", tc.probe, err, tc.want)
		}
	}
}
