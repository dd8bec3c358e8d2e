package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"sandbox.io/injector/internal/envflag"
	"sandbox.io/injector/internal/version"
	"sandbox.io/injector/runner"
	"sandbox.io/injector/runner/api"
)

// options are the flags of "sandbox-runner run". Each flag has a SANDBOX_*
// environment variable (internal/envflag); a flag on the command line wins
// over its variable.
type options struct {
	mode           string
	listen         string
	tokenFile      string
	claimVerifier  string
	insecureLoop   bool
	workdir        string
	gracePeriod    time.Duration
	logLevel       string
	level          slog.Level // parsed from logLevel by validate
	maxOutputBytes int
	maxUploadBytes int64
	maxConcurrent  int
	restartPolicy  string
	livenessProbe  string
	probe          *api.Probe // parsed from livenessProbe by validate
	uploadTimeout  time.Duration
	uploadIdle     time.Duration
	command        []string
}

type lookupEnv func(string) (string, bool)

// addFlags registers every flag with its default; envflag.Parse applies the
// SANDBOX_* variables, and each usage names its variable.
func (o *options) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.mode, "mode", api.ModeServer, "server: serve the API and keep serving after the command exits; wrap: exit with the command's exit code")
	fs.StringVar(&o.listen, "listen", api.DefaultListen, "TCP address of the API")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the API bearer token, or only sha256:<its SHA-256 in hex> (then the sandbox's own code cannot read the token); missing or empty: the API is closed (see --insecure-loopback)")
	fs.StringVar(&o.claimVerifier, "claim-verifier", "", "sha256:<hex> of the claim credential: the runner waits for POST /claim and answers nothing else until then (set by the webhook on pool pods)")
	fs.BoolVar(&o.insecureLoop, "insecure-loopback", false, "without a token, answer loopback clients (kubectl port-forward); off: a runner without a token answers only its probes")
	fs.StringVar(&o.workdir, "workdir", "", "directory of /files and default cwd of /execute (default the current directory)")
	fs.StringVar(&o.restartPolicy, "restart-policy", api.RestartNever, "Always, OnFailure or Never: what the runner does, in place, when the command exits (server mode; back-off 1s doubling to 60s)")
	fs.StringVar(&o.livenessProbe, "liveness-probe", "", "Kubernetes core/v1 Probe as JSON (exec, httpGet, tcpSocket) for the command; failing it kills the command's process group")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	o.gracePeriod = runner.DefaultGracePeriod
	fs.Var(durationValue{&o.gracePeriod}, "grace-period", "time the command gets after SIGTERM before its group is killed")
	fs.IntVar(&o.maxOutputBytes, "max-output-bytes", runner.DefaultMaxOutputBytes, "output captured per stream by a JSON /execute")
	fs.Int64Var(&o.maxUploadBytes, "max-upload-bytes", runner.DefaultMaxUploadBytes, "largest PUT /files body")
	fs.IntVar(&o.maxConcurrent, "max-concurrent", runner.DefaultMaxConcurrent, "most /execute commands at once")
	o.uploadTimeout = runner.DefaultUploadTimeout
	fs.Var(durationValue{&o.uploadTimeout}, "upload-timeout", "most time a PUT /files body may take, up to 24h")
	o.uploadIdle = runner.DefaultUploadIdleTimeout
	fs.Var(durationValue{&o.uploadIdle}, "upload-idle-timeout", "most time a PUT /files body may send nothing")
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " (env " + envflag.Name(f.Name) + ")" })
}

type durationValue struct{ d *time.Duration }

func (v durationValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

// Set takes a Go duration ("30s") or a number of seconds ("30").
func (v durationValue) Set(s string) error {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		*v.d = time.Duration(n * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration like 10s", s)
	}
	*v.d = d
	return nil
}

func parseOptions(args []string, env lookupEnv, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("sandbox-runner run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	o.addFlags(fs)
	if err := envflag.Parse(fs, args, env); err != nil {
		return nil, fmt.Errorf("parsing flags: %w", err)
	}
	o.command = fs.Args()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *options) validate() error {
	var errs []error
	if o.mode != api.ModeServer && o.mode != api.ModeWrap {
		errs = append(errs, fmt.Errorf("--mode %q is not one of server, wrap", o.mode))
	}
	if o.mode == api.ModeWrap && len(o.command) == 0 {
		errs = append(errs, errors.New("--mode=wrap needs a command after --"))
	}
	if o.listen == "" {
		errs = append(errs, errors.New("--listen is empty"))
	}
	if o.gracePeriod < 0 {
		errs = append(errs, fmt.Errorf("--grace-period %s is negative", o.gracePeriod))
	}
	if o.maxOutputBytes <= 0 || o.maxUploadBytes <= 0 || o.maxConcurrent <= 0 {
		errs = append(errs, errors.New("--max-output-bytes, --max-upload-bytes and --max-concurrent must be positive"))
	}
	if !slices.Contains(api.RestartPolicies, o.restartPolicy) {
		errs = append(errs, fmt.Errorf("--restart-policy %q is not one of Always, OnFailure, Never", o.restartPolicy))
	} else if o.mode == api.ModeWrap && o.restartPolicy != api.RestartNever {
		errs = append(errs, fmt.Errorf("--restart-policy=%s needs --mode=server: wrap mode exits with the command's exit code and the pod's restartPolicy applies", o.restartPolicy))
	}
	if o.livenessProbe != "" {
		p, err := api.ParseProbe(o.livenessProbe)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--liveness-probe: %w", err))
		case len(o.command) == 0:
			errs = append(errs, errors.New("--liveness-probe needs a command after -- to probe"))
		default:
			o.probe = p
		}
	}
	if o.uploadTimeout <= 0 || o.uploadTimeout > runner.MaxUploadTimeout {
		errs = append(errs, fmt.Errorf("--upload-timeout %s must be positive and at most %s", o.uploadTimeout, runner.MaxUploadTimeout))
	}
	if o.uploadIdle <= 0 || o.uploadIdle > o.uploadTimeout {
		errs = append(errs, fmt.Errorf("--upload-idle-timeout %s must be positive and at most --upload-timeout %s", o.uploadIdle, o.uploadTimeout))
	}
	if err := o.level.UnmarshalText([]byte(o.logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q is not one of debug, info, warn, error", o.logLevel))
	}
	return errors.Join(errs...)
}

// config builds the runner's config from validated options; the logger
// writes JSON to stderr at the level validate parsed.
func (o *options) config(stderr io.Writer) runner.Config {
	return runner.Config{
		Mode:              o.mode,
		Listen:            o.listen,
		TokenFile:         o.tokenFile,
		ClaimVerifier:     o.claimVerifier,
		InsecureLoopback:  o.insecureLoop,
		Workdir:           o.workdir,
		GracePeriod:       o.gracePeriod,
		Command:           o.command,
		RestartPolicy:     o.restartPolicy,
		LivenessProbe:     o.probe,
		Version:           version.Version,
		Logger:            slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: o.level})),
		MaxOutputBytes:    o.maxOutputBytes,
		MaxUploadBytes:    o.maxUploadBytes,
		MaxConcurrent:     o.maxConcurrent,
		UploadTimeout:     o.uploadTimeout,
		UploadIdleTimeout: o.uploadIdle,
		Reap:              true,
	}
}
