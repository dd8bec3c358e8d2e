package main

import (
	"bytes"
	goflag "flag"
	"io"
	"sync"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// addKlogFlags adds kubectl's -v (klog verbosity: 6 logs every request
// with its status and time, 7 its headers, 8 the API server's response
// bodies, 9 curl commands) and --vmodule.
func addKlogFlags(f *pflag.FlagSet) {
	gfs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(gfs)
	v := pflag.PFlagFromGoFlag(gfs.Lookup("v"))
	v.Shorthand = "v"
	v.Usage = "log level, as kubectl's: 6 logs each request (API server and runners), 7 its headers, 8 response bodies, 9 curl commands; the claimant token is masked"
	f.AddFlag(v)
	f.AddFlag(pflag.PFlagFromGoFlag(gfs.Lookup("vmodule")))
}

// setupLogging sends klog's output (client-go's request logs, and
// controller-runtime's) through secrets to w, so that no claimant token
// reaches a log whatever the level: client-go masks Authorization headers
// but not the X-Sandbox-Token header that carries the token through the
// API server's pod proxy.
func setupLogging(w io.Writer) {
	gfs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(gfs)
	for k, v := range map[string]string{"logtostderr": "false", "one_output": "true", "stderrthreshold": "FATAL"} {
		_ = gfs.Set(k, v)
	}
	secrets.setOutput(w)
	klog.SetOutput(secrets)
	ctrllog.SetLogger(klog.NewKlogr())
}

// masked replaces each secret in a log line.
const masked = "<masked>"

// secrets is the writer of every log line: it replaces the secrets it
// was given (claimant tokens) with <masked>.
var secrets = &maskingWriter{}

type maskingWriter struct {
	mu      sync.Mutex
	out     io.Writer
	secrets [][]byte
}

func (m *maskingWriter) setOutput(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.out = w
}

// add registers a secret to mask.
func (m *maskingWriter) add(secret string) {
	if secret == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.secrets = append(m.secrets, []byte(secret))
}

// Write writes p, masked; klog writes one whole line per call.
func (m *maskingWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.out == nil {
		return len(p), nil
	}
	out := p
	for _, s := range m.secrets {
		if bytes.Contains(out, s) {
			out = bytes.ReplaceAll(out, s, []byte(masked))
		}
	}
	if _, err := m.out.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
