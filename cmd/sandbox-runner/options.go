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

	"sandbox.io/injector/internal/version"
	"sandbox.io/injector/runner"
	"sandbox.io/injector/runner/api"
)

// options are the flags of "sandbox-runner run". Each flag has a SANDBOX_*
// environment variable, which the webhook sets; a flag on the command line
// wins over its variable.
type options struct {
	mode           string
	listen         string
	tokenFile      string
	claimVerifier  string
	insecureLoop   bool
	workdir        string
	gracePeriod    time.Duration
	logLevel       string
	maxOutputBytes int
	maxUploadBytes int64
	maxConcurrent  int
	restartPolicy  string
	livenessProbe  string
	probe          *api.Probe // parsed from livenessProbe by validate
	command        []string
}

type lookupEnv func(string) (string, bool)

func (o *options) addFlags(fs *flag.FlagSet, env lookupEnv) {
	str := func(p *string, name, envName, def, usage string) {
		if v, ok := env(envName); ok {
			def = v
		}
		fs.StringVar(p, name, def, usage+" (env "+envName+")")
	}
	str(&o.mode, "mode", "SANDBOX_MODE", api.ModeServer, "server: serve the API and keep serving after the command exits; wrap: exit with the command's exit code")
	str(&o.listen, "listen", "SANDBOX_LISTEN", ":7080", "TCP address of the API")
	str(&o.tokenFile, "token-file", "SANDBOX_TOKEN_FILE", "", "file holding the API bearer token; missing or empty: the API is closed (see --insecure-loopback)")
	str(&o.claimVerifier, "claim-verifier", "SANDBOX_CLAIM_VERIFIER", "", "sha256:<hex> of the claim credential: the runner waits for POST /claim and answers nothing else until then (set by the webhook on pool pods)")
	loop := false
	if v, ok := env("SANDBOX_INSECURE_LOOPBACK"); ok {
		loop = v == "true"
	}
	fs.BoolVar(&o.insecureLoop, "insecure-loopback", loop, "without a token, answer loopback clients (kubectl port-forward); off: a runner without a token answers only its probes (env SANDBOX_INSECURE_LOOPBACK)")
	str(&o.workdir, "workdir", "SANDBOX_WORKDIR", "", "directory of /files and default cwd of /execute (default the current directory)")
	str(&o.restartPolicy, "restart-policy", "SANDBOX_RESTART_POLICY", api.RestartNever, "Always, OnFailure or Never: what the runner does, in place, when the command exits (server mode; back-off 1s doubling to 60s)")
	str(&o.livenessProbe, "liveness-probe", "SANDBOX_LIVENESS_PROBE", "", "Kubernetes core/v1 Probe as JSON (exec, httpGet, tcpSocket) for the command; failing it kills the command's process group")
	str(&o.logLevel, "log-level", "SANDBOX_LOG_LEVEL", "info", "debug, info, warn or error")
	o.gracePeriod = 10 * time.Second
	fs.Var(durationValue{&o.gracePeriod}, "grace-period", "time the command gets after SIGTERM before its group is killed (env SANDBOX_GRACE_PERIOD)")
	o.maxOutputBytes = 1 << 20
	fs.IntVar(&o.maxOutputBytes, "max-output-bytes", o.maxOutputBytes, "output captured per stream by a JSON /execute (env SANDBOX_MAX_OUTPUT_BYTES)")
	o.maxUploadBytes = 4 << 30
	fs.Int64Var(&o.maxUploadBytes, "max-upload-bytes", o.maxUploadBytes, "largest PUT /files body (env SANDBOX_MAX_UPLOAD_BYTES)")
	o.maxConcurrent = 64
	fs.IntVar(&o.maxConcurrent, "max-concurrent", o.maxConcurrent, "most /execute commands at once (env SANDBOX_MAX_CONCURRENT)")
}

// envDefaults applies the variables of the non-string flags; a bad value
// is an error that names the variable.
func (o *options) envDefaults(fs *flag.FlagSet, env lookupEnv) error {
	var errs []error
	for flagName, envName := range map[string]string{
		"grace-period":     "SANDBOX_GRACE_PERIOD",
		"max-output-bytes": "SANDBOX_MAX_OUTPUT_BYTES",
		"max-upload-bytes": "SANDBOX_MAX_UPLOAD_BYTES",
		"max-concurrent":   "SANDBOX_MAX_CONCURRENT",
	} {
		if v, ok := env(envName); ok && v != "" {
			if err := fs.Set(flagName, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName, v, err))
			}
		}
	}
	return errors.Join(errs...)
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
	o.addFlags(fs, env)
	if err := o.envDefaults(fs, env); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
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
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q is not one of debug, info, warn, error", o.logLevel))
	}
	return errors.Join(errs...)
}

// config builds the runner's config; the logger writes JSON to stderr.
func (o *options) config(stderr io.Writer) (runner.Config, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.logLevel)); err != nil {
		return runner.Config{}, fmt.Errorf("parsing --log-level: %w", err)
	}
	return runner.Config{
		Mode:             o.mode,
		Listen:           o.listen,
		TokenFile:        o.tokenFile,
		ClaimVerifier:    o.claimVerifier,
		InsecureLoopback: o.insecureLoop,
		Workdir:          o.workdir,
		GracePeriod:      o.gracePeriod,
		Command:          o.command,
		RestartPolicy:    o.restartPolicy,
		LivenessProbe:    o.probe,
		Version:          version.Version,
		Logger:           slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl})),
		MaxOutputBytes:   o.maxOutputBytes,
		MaxUploadBytes:   o.maxUploadBytes,
		MaxConcurrent:    o.maxConcurrent,
		Reap:             true,
	}, nil
}
