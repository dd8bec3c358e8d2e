package api

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// Media types the runner speaks.
const (
	// ContentTypeJSON is the media type of every JSON body.
	ContentTypeJSON = "application/json"
	// ContentTypeNDJSON, sent in Accept on POST /execute, asks for a stream
	// of StreamEvent lines instead of one ExecuteResult.
	ContentTypeNDJSON = "application/x-ndjson"
)

// TokenHeader carries the API token when the Authorization header cannot:
// the Kubernetes API server's pod proxy consumes Authorization for its own
// authentication and does not pass it on. The runner accepts the token in
// either header.
const TokenHeader = "X-Sandbox-Token"

// Stream names used in StreamEvent.Stream.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// Modes of the runner (flag --mode).
const (
	// ModeServer serves the API, supervises the optional command and keeps
	// serving after it exits.
	ModeServer = "server"
	// ModeWrap supervises the command and exits with its exit code.
	ModeWrap = "wrap"
)

// ExecuteRequest is the body of POST /execute. Exactly one of Argv and Shell
// is set.
type ExecuteRequest struct {
	// Argv is the command and its arguments, run without a shell. A name
	// without a slash is looked up in PATH (of the merged environment).
	Argv []string `json:"argv,omitempty"`
	// Shell is a script run as /bin/sh -c Shell; the image must have /bin/sh.
	Shell string `json:"shell,omitempty"`
	// Stdin is written to the command's standard input, which is then
	// closed. Empty means an immediately closed standard input.
	Stdin string `json:"stdin,omitempty"`
	// Env is added to the runner's own environment (a key here wins).
	Env map[string]string `json:"env,omitempty"`
	// Cwd is the working directory relative to the runner's work
	// directory; empty means the work directory itself.
	Cwd string `json:"cwd,omitempty"`
	// TimeoutMs kills the command's whole process group after this many
	// milliseconds; 0 means no timeout. At most MaxTimeoutMs.
	TimeoutMs int64 `json:"timeout_ms,omitempty"`
}

// MaxTimeoutMs is the longest ExecuteRequest.TimeoutMs: 24 hours.
const MaxTimeoutMs = 24 * 60 * 60 * 1000

// Validate reports every problem of the request, joined; nil when the
// runner can run it.
func (r *ExecuteRequest) Validate() error {
	var errs []error
	switch {
	case len(r.Argv) == 0 && r.Shell == "":
		errs = append(errs, errors.New("one of argv and shell is required"))
	case len(r.Argv) > 0 && r.Shell != "":
		errs = append(errs, errors.New("argv and shell are mutually exclusive"))
	case len(r.Argv) > 0 && r.Argv[0] == "":
		errs = append(errs, errors.New("argv[0] is empty"))
	}
	for i, a := range r.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			errs = append(errs, fmt.Errorf("argv[%d] contains a NUL byte", i))
		}
	}
	if strings.IndexByte(r.Shell, 0) >= 0 {
		errs = append(errs, errors.New("shell contains a NUL byte"))
	}
	for k, v := range r.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			errs = append(errs, fmt.Errorf("env key %q is not a valid variable name", k))
		}
		if strings.IndexByte(v, 0) >= 0 {
			errs = append(errs, fmt.Errorf("env %q contains a NUL byte", k))
		}
	}
	if r.Cwd != "" {
		if _, err := CleanPath(r.Cwd); err != nil {
			errs = append(errs, fmt.Errorf("cwd: %w", err))
		}
	}
	// Far beyond the maximum the duration in nanoseconds would overflow
	// into a negative one, which would kill the command at once.
	if r.TimeoutMs < 0 || r.TimeoutMs > MaxTimeoutMs {
		errs = append(errs, fmt.Errorf("timeout_ms %d is negative or above %d (24h); 0 means no timeout", r.TimeoutMs, MaxTimeoutMs))
	}
	return errors.Join(errs...)
}

// ErrInvalidPath is wrapped by CleanPath for every refused path.
var ErrInvalidPath = errors.New("invalid path")

// CleanPath checks a path of the files API or a cwd: it must be relative,
// free of NUL bytes and of ".." elements. It returns the path cleaned, "."
// for the work directory itself. Confinement is enforced again by the
// runner's os.Root; this is the early, explainable refusal.
func CleanPath(p string) (string, error) {
	switch {
	case strings.IndexByte(p, 0) >= 0:
		return "", fmt.Errorf("%w: contains a NUL byte", ErrInvalidPath)
	case strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("%w %q: absolute paths are not allowed, paths are relative to the work directory", ErrInvalidPath, p)
	case strings.IndexByte(p, '\\') >= 0:
		return "", fmt.Errorf("%w %q: backslashes are not allowed", ErrInvalidPath, p)
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return "", fmt.Errorf("%w %q: \"..\" is not allowed", ErrInvalidPath, p)
		}
	}
	if p == "" {
		return ".", nil
	}
	return path.Clean(p), nil
}

// DecodeExecuteRequest reads one JSON ExecuteRequest from r strictly (see
// DecodeStrict), and validates it.
func DecodeExecuteRequest(r io.Reader) (*ExecuteRequest, error) {
	var req ExecuteRequest
	if err := DecodeStrict(r, &req); err != nil {
		return nil, fmt.Errorf("decoding execute request: %w", err)
	}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("validating execute request: %w", err)
	}
	return &req, nil
}

// ExecuteResult is the answer of POST /execute (JSON), and the last line of
// its NDJSON stream (without Stdout and Stderr, which were streamed).
type ExecuteResult struct {
	// ExitCode is the command's exit status; 128+N when signal N killed it;
	// 127 when the command was not found, 126 when it could not be started.
	ExitCode int `json:"exit_code"`
	// Stdout and Stderr are the captured output, each cut at the runner's
	// output cap (then Truncated is true).
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	// DurationMs is the wall time from start to exit, in milliseconds.
	DurationMs float64 `json:"duration_ms"`
	// TimedOut is true when the timeout killed the process group.
	TimedOut bool `json:"timed_out"`
	// Truncated is true when some output was dropped at the cap.
	Truncated bool `json:"truncated"`
	// Error explains why the command did not run (not found, not
	// executable); empty when it ran.
	Error string `json:"error,omitempty"`
}

// StreamEvent is one line of the NDJSON answer of POST /execute: either a
// chunk of output (Stream and Data set), or, last, the result (the
// ExecuteResult fields set, Stream empty).
type StreamEvent struct {
	Stream string `json:"stream,omitempty"`
	Data   string `json:"data,omitempty"`
	*ExecuteResult
}

// Status is the body of GET /status.
type Status struct {
	Mode    string `json:"mode"`
	Version string `json:"version"`
	// ClaimProtocol is the POST /claim protocol the runner speaks
	// (ClaimProtocol). Runners of releases before this field omit it; they
	// speak protocol 2 or older.
	ClaimProtocol int `json:"claim_protocol,omitempty"`
	// Healthy is the runner's one healthy bit: it serves, and where a child
	// is expected to run (by the restart policy) it runs and its liveness
	// probe, if any, passed last time.
	Healthy bool `json:"healthy"`
	// Child is the supervised command; nil when the runner has none.
	Child *ChildStatus `json:"child"`
	// Executions is the number of /execute commands running now.
	Executions int `json:"executions"`
	// OrphansReaped counts exited processes the runner reaped as PID 1 or
	// as child subreaper.
	OrphansReaped uint64 `json:"orphans_reaped"`
	// Claim is the claim the runner accepted; nil while unclaimed.
	Claim *ClaimStatus `json:"claim,omitempty"`
}

// ChildStatus describes the supervised command.
type ChildStatus struct {
	Argv      []string  `json:"argv"`
	PID       int       `json:"pid"`
	Running   bool      `json:"running"`
	ExitCode  *int      `json:"exit_code"`
	StartedAt time.Time `json:"started_at"`
	ExitedAt  time.Time `json:"exited_at,omitzero"`
	// RestartPolicy is the runner's restart policy (RestartAlways, ...).
	RestartPolicy string `json:"restart_policy,omitempty"`
	// Restarts counts the starts after the first.
	Restarts int `json:"restarts"`
	// LastExit is how the command last ended; nil before its first exit.
	LastExit *ExitStatus `json:"last_exit,omitempty"`
	// NextStart is when a backing-off command starts again; zero otherwise.
	NextStart time.Time `json:"next_start,omitzero"`
}

// FileInfo is one entry of GET /files?dir=D.
type FileInfo struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	Dir  bool   `json:"dir"`
	// Mode is the permission bits in octal, like "0644".
	Mode string `json:"mode"`
	// Symlink is true for a symbolic link (not followed).
	Symlink bool      `json:"symlink,omitempty"`
	Mtime   time.Time `json:"mtime"`
}

// Error is the JSON body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
	// ClaimProtocol, on a refused POST /claim, is the claim protocol the
	// runner speaks, so that a claim controller of another protocol can
	// tell a runner it cannot talk to from one that refused the claim.
	ClaimProtocol int `json:"claim_protocol,omitempty"`
}

// ClaimProtocol is the version of the POST /claim exchange this runner
// speaks. Version 2: the claim carries only the digest of the claimant's
// token and is authorized by a per-pod claim credential (version 1 carried
// the token itself and was authorized by a shared pool token). A runner
// refuses a request of another version with 400, naming both.
const ClaimProtocol = 2

// ClaimRequest is the body of POST /claim: the settings the claim
// controller gives a warm sandbox for its claimant, so that a pod started
// before anyone claimed it holds no secret of its claimant until then. A
// runner accepts one claim in its life; the request is authorized with the
// pod's claim credential, which authorizes nothing else.
type ClaimRequest struct {
	// Protocol must be ClaimProtocol.
	Protocol int `json:"protocol"`
	// Claimant names who claimed the sandbox (namespace/claim), for
	// /status and the logs.
	Claimant string `json:"claimant,omitempty"`
	// TokenSHA256 is the lower-case hex SHA-256 of the claimant's token:
	// from this claim on, only that token is accepted.
	TokenSHA256 string `json:"token_sha256"`
	// Env is added to the environment of every later /execute; a key of an
	// execute request's own Env wins over it.
	Env map[string]string `json:"env,omitempty"`
}

// Validate reports every problem of the claim, joined; nil when the runner
// can apply it.
func (r *ClaimRequest) Validate() error {
	var errs []error
	if r.Protocol != ClaimProtocol {
		errs = append(errs, &ProtocolError{Got: r.Protocol, Want: ClaimProtocol})
	}
	if !IsSHA256Hex(r.TokenSHA256) {
		errs = append(errs, errors.New("token_sha256 must be 64 lower-case hex digits"))
	}
	if strings.ContainsAny(r.Claimant, "\x00\r\n") {
		errs = append(errs, errors.New("claimant must not contain NUL bytes or line breaks"))
	}
	for k, v := range r.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			errs = append(errs, fmt.Errorf("env key %q is not a valid variable name", k))
		}
		if strings.IndexByte(v, 0) >= 0 {
			errs = append(errs, fmt.Errorf("env %q contains a NUL byte", k))
		}
	}
	return errors.Join(errs...)
}

// IsSHA256Hex reports whether s is a SHA-256 digest in lower-case hex.
func IsSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// DecodeClaimRequest reads one JSON ClaimRequest from r strictly (see
// DecodeStrict), and validates it.
func DecodeClaimRequest(r io.Reader) (*ClaimRequest, error) {
	var req ClaimRequest
	if err := decodeClaimBody(r, &req); err != nil {
		return nil, fmt.Errorf("decoding claim request: %w", err)
	}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("validating claim request: %w", err)
	}
	return &req, nil
}

// ClaimStatus describes the claim a runner accepted; it is the answer of
// POST /claim and the Claim field of /status. It never holds the token or
// the environment's values.
type ClaimStatus struct {
	// Protocol is the claim protocol the runner took the claim with
	// (ClaimProtocol); runners of releases before this field omit it.
	Protocol  int       `json:"protocol,omitempty"`
	Claimant  string    `json:"claimant,omitempty"`
	ClaimedAt time.Time `json:"claimed_at"`
	// EnvKeys are the names of the variables the claim added, sorted.
	EnvKeys []string `json:"env_keys,omitempty"`
}
