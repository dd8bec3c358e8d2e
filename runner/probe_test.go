package runner

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sandbox.io/injector/runner/api"
)

// newTestProber runs probe (defaulted and validated) in dir with env.
func newTestProber(t *testing.T, probeJSON, dir string, env []string) *prober {
	t.Helper()
	p, err := api.ParseProbe(probeJSON)
	if err != nil {
		t.Fatalf("parsing %s: %v", probeJSON, err)
	}
	procs := newProcTable(false)
	t.Cleanup(procs.close)
	return &prober{probe: p, exec: &executor{shell: shellPath, procs: procs}, dir: dir, env: env}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return n
}

// TestExecProbeRunsInChildDirAndEnv: the command runs in the child's working
// directory and environment; exit 0 passes, anything else fails with its
// output.
func TestExecProbeRunsInChildDirAndEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := append(os.Environ(), "PROBE_NAME=touched")
	ok, out := newTestProber(t, `{"exec":{"command":["sh","-c","touch \"$PROBE_NAME\""]}}`, dir, env).run(t.Context())
	if !ok {
		t.Fatalf("probe failed: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "touched")); err != nil {
		t.Errorf("the probe did not run in the child's directory with its environment: %v", err)
	}
	ok, out = newTestProber(t, `{"exec":{"command":["sh","-c","echo not well; exit 3"]}}`, dir, env).run(t.Context())
	if ok || !strings.Contains(out, "exit code 3") || !strings.Contains(out, "not well") {
		t.Errorf("failing probe: ok %v output %q", ok, out)
	}
	ok, out = newTestProber(t, `{"exec":{"command":["no-such-probe-command"]}}`, dir, env).run(t.Context())
	if ok || !strings.Contains(out, "not found") {
		t.Errorf("missing command: ok %v output %q", ok, out)
	}
}

// TestExecProbeTimeoutKillsGroup: a probe over timeoutSeconds fails and its
// whole process group is killed, background children included.
func TestExecProbeTimeoutKillsGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ok, out := newTestProber(t, `{"exec":{"command":["sh","-c","sleep 300 & echo $! > bg; wait"]},"timeoutSeconds":1}`, dir, os.Environ()).run(t.Context())
	if ok || !strings.Contains(out, "timed out after 1s") {
		t.Fatalf("ok %v output %q, want a timeout", ok, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "bg"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, func() string { return "background sleep " + strconv.Itoa(pid) + " still runs" }, func() bool {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err != nil || strings.Contains(string(st), ") Z ")
	})
}

func TestHTTPGetProbe(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != probeUserAgent || r.Header.Get("X-Check") != "yes" || r.Host != "app.local" {
			http.Error(w, "unexpected request "+r.UserAgent()+" "+r.Host, http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusInternalServerError) })
	plain := httptest.NewServer(mux)
	t.Cleanup(plain.Close)
	tlsSrv := httptest.NewTLSServer(mux)
	t.Cleanup(tlsSrv.Close)
	headers := `"httpHeaders":[{"name":"X-Check","value":"yes"},{"name":"Host","value":"app.local"}]`
	for _, tc := range []struct {
		name, probe string
		want        bool
		output      string
	}{
		{"ok", `{"httpGet":{"path":"/healthz","port":` + strconv.Itoa(portOf(t, plain.Listener.Addr().String())) + `,` + headers + `}}`, true, "200"},
		{"redirect counts as success", `{"httpGet":{"path":"/moved","port":` + strconv.Itoa(portOf(t, plain.Listener.Addr().String())) + `}}`, true, "302"},
		{"500", `{"httpGet":{"path":"/broken","port":` + strconv.Itoa(portOf(t, plain.Listener.Addr().String())) + `}}`, false, "500"},
		{"missing headers", `{"httpGet":{"path":"/healthz","port":` + strconv.Itoa(portOf(t, plain.Listener.Addr().String())) + `}}`, false, "400"},
		{"https, certificate not verified", `{"httpGet":{"path":"/healthz","scheme":"HTTPS","port":` + strconv.Itoa(portOf(t, tlsSrv.Listener.Addr().String())) + `,` + headers + `}}`, true, "200"},
		{"nothing listening", `{"httpGet":{"port":` + strconv.Itoa(closedPort(t)) + `}}`, false, "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, out := newTestProber(t, tc.probe, t.TempDir(), nil).run(t.Context())
			if ok != tc.want || !strings.Contains(out, tc.output) {
				t.Errorf("ok %v output %q, want %v and %q", ok, out, tc.want, tc.output)
			}
		})
	}
}

func TestTCPSocketProbe(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if ok, out := newTestProber(t, `{"tcpSocket":{"port":`+strconv.Itoa(portOf(t, ln.Addr().String()))+`}}`, t.TempDir(), nil).run(t.Context()); !ok {
		t.Errorf("open port: %s", out)
	}
	if ok, out := newTestProber(t, `{"tcpSocket":{"port":`+strconv.Itoa(closedPort(t))+`,"host":"127.0.0.1"}}`, t.TempDir(), nil).run(t.Context()); ok {
		t.Errorf("closed port passed: %s", out)
	}
}

// closedPort is a loopback port that was free a moment ago.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := portOf(t, ln.Addr().String())
	ln.Close()
	return port
}
