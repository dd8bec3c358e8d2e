package runner

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sandbox.io/injector/runner/api"
)

// Config configures the runner. The zero value of a field means its
// documented default; setDefaults applies them.
type Config struct {
	// Mode is api.ModeServer (default) or api.ModeWrap.
	Mode string
	// Listen is the TCP address of the API; default api.DefaultListen
	// (":7080").
	Listen string
	// TokenFile holds the bearer token, or only its verifier ("sha256:"
	// and its SHA-256 in 64 lower-case hex digits, which code in the
	// sandbox may read without learning the token). Missing, empty or
	// unset means no token: the API is then closed (only /healthz and
	// /readyz answer), unless InsecureLoopback. The file is re-read when it
	// changes.
	TokenFile string
	// ClaimVerifier, "sha256:" and 64 hex digits, makes the runner a warm
	// sandbox waiting for its claim: it answers only POST /claim, authorized
	// by the credential whose SHA-256 this is, until a claim switches it to
	// the claimant's token. TokenFile is not read while it waits.
	ClaimVerifier string
	// InsecureLoopback opens the API to loopback clients while no token is
	// configured (kubectl port-forward). Off, a runner without a token
	// answers nothing but its probes.
	InsecureLoopback bool
	// Workdir confines /files and is the default cwd of /execute; default
	// the process's current directory. It is created when missing.
	Workdir string
	// GracePeriod is how long the supervised command may take to exit after
	// SIGTERM before its process group is killed; default 10s.
	GracePeriod time.Duration
	// Command is the supervised command and its arguments; empty in server
	// mode means API only. Required in wrap mode.
	Command []string
	// RestartPolicy is what the runner does, in place, when Command exits:
	// api.RestartAlways, api.RestartOnFailure or api.RestartNever (default).
	// Restarts wait 1s, doubling up to 60s, reset after 10 minutes of
	// running. Wrap mode allows only Never: it exits with the command.
	RestartPolicy string
	// LivenessProbe, when set, probes Command as the kubelet probes a
	// container; FailureThreshold failures in a row kill its process group
	// (SIGTERM, SIGKILL after the grace period). It must be defaulted and
	// valid (api.ParseProbe) and needs a Command.
	LivenessProbe *api.Probe
	// Version is reported by /status and /metrics; default "dev".
	Version string
	// Logger receives one line per request and the lifecycle events;
	// default discards.
	Logger *slog.Logger
	// MaxRequestBytes caps the body of POST /execute (413 above); default 8 MiB.
	MaxRequestBytes int64
	// MaxUploadBytes caps the body of PUT /files (413 above); default 4 GiB.
	MaxUploadBytes int64
	// UploadTimeout bounds the time a PUT /files may take to send its whole
	// body; default 1h, at most 24h.
	UploadTimeout time.Duration
	// UploadIdleTimeout bounds the time a PUT /files body may send nothing;
	// default 1m, at most UploadTimeout.
	UploadIdleTimeout time.Duration
	// MaxOutputBytes caps the output captured per stream by a JSON
	// /execute (the rest is dropped and the result says truncated); default
	// 1 MiB. Streaming (NDJSON) answers are not captured and not capped.
	MaxOutputBytes int
	// MaxConcurrent caps the /execute commands running at once (429
	// above); default 64.
	MaxConcurrent int
	// Reap makes the runner reap every exited child with wait4(-1): set it in
	// the runner binary, where orphans are re-parented to it (PID 1 or child
	// subreaper); leave it off when embedding the server in a program that
	// waits for its own children.
	Reap bool

	clock clock // time; tests set a fake one
}

// Defaults of Config (the runner binary's flags start from them too), and
// the bound of the upload timeout.
const (
	DefaultGracePeriod             = 10 * time.Second
	DefaultMaxRequestBytes   int64 = 8 << 20
	DefaultMaxUploadBytes    int64 = 4 << 30
	DefaultMaxOutputBytes          = 1 << 20
	DefaultMaxConcurrent           = 64
	DefaultUploadTimeout           = time.Hour
	DefaultUploadIdleTimeout       = time.Minute
	MaxUploadTimeout               = 24 * time.Hour
)

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = api.ModeServer
	}
	if c.Listen == "" {
		c.Listen = api.DefaultListen
	}
	if c.GracePeriod == 0 {
		c.GracePeriod = DefaultGracePeriod
	}
	if c.RestartPolicy == "" {
		c.RestartPolicy = api.RestartNever
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if c.UploadTimeout == 0 {
		c.UploadTimeout = DefaultUploadTimeout
	}
	if c.UploadIdleTimeout == 0 {
		c.UploadIdleTimeout = min(DefaultUploadIdleTimeout, c.UploadTimeout)
	}
	if c.MaxOutputBytes == 0 {
		c.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.Workdir == "" {
		if wd, err := os.Getwd(); err == nil {
			c.Workdir = wd
		}
	} else if abs, err := filepath.Abs(c.Workdir); err == nil {
		c.Workdir = abs
	}
}

func (c *Config) validate() error {
	var errs []error
	switch c.Mode {
	case api.ModeServer:
	case api.ModeWrap:
		if len(c.Command) == 0 {
			errs = append(errs, errors.New("wrap mode needs a command after --"))
		}
	default:
		errs = append(errs, fmt.Errorf("mode %q is not one of %s, %s", c.Mode, api.ModeServer, api.ModeWrap))
	}
	if !slices.Contains(api.RestartPolicies, c.RestartPolicy) {
		errs = append(errs, fmt.Errorf("restart policy %q is not one of %s", c.RestartPolicy, strings.Join(api.RestartPolicies, ", ")))
	} else if c.Mode == api.ModeWrap && c.RestartPolicy != api.RestartNever {
		errs = append(errs, fmt.Errorf("restart policy %s needs server mode: wrap mode exits with the command's exit code (the pod's restartPolicy applies)", c.RestartPolicy))
	}
	if c.LivenessProbe != nil {
		if len(c.Command) == 0 {
			errs = append(errs, errors.New("a liveness probe needs a command to probe"))
		}
		if err := c.LivenessProbe.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("liveness probe: %w", err))
		}
	}
	if c.Workdir == "" {
		errs = append(errs, errors.New("workdir is required (the current directory is unknown)"))
	}
	if c.GracePeriod < 0 {
		errs = append(errs, fmt.Errorf("grace period %s is negative", c.GracePeriod))
	}
	if c.MaxRequestBytes < 0 || c.MaxUploadBytes < 0 || c.MaxOutputBytes < 0 || c.MaxConcurrent < 0 {
		errs = append(errs, errors.New("limits must not be negative"))
	}
	if c.UploadTimeout < 0 || c.UploadTimeout > MaxUploadTimeout || c.UploadIdleTimeout < 0 || c.UploadIdleTimeout > c.UploadTimeout {
		errs = append(errs, errors.New("upload timeouts: 0 < idle <= whole <= 24h"))
	}
	if c.ClaimVerifier != "" {
		if _, err := parseVerifier(c.ClaimVerifier); err != nil {
			errs = append(errs, fmt.Errorf("claim %w", err))
		}
	}
	return errors.Join(errs...)
}
