package claim

import (
	"context"
	"fmt"
	"io"
	"time"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/runner/api"
	runnerclient "sandbox.io/injector/runner/client"
)

// Sandbox is a bound claim's pod with its runner.
type Sandbox struct {
	// Claim is the SandboxClaim's name; Namespace its namespace; Pool its
	// pool.
	Claim, Namespace, Pool string
	// Pod and Node locate the sandbox; PodIP and Port its runner.
	Pod, Node, PodIP string
	Port             int32
	// Address is the runner's base URL for Transport: http://IP:PORT, or
	// the API server's pods/NAME:PORT/proxy URL.
	Address string
	// Transport is how Runner reaches the sandbox.
	Transport Transport
	// Token is the claimant's token, the only one the runner accepts.
	Token string
	// Origin is Warm (taken from the pool's warm pods) or Cold (made for
	// the claim).
	Origin v1alpha1.Origin
	// ExpiresAt is when the lifetime ends; zero for none.
	ExpiresAt time.Time
	// Duration is how long Claim took, from creating the claim to seeing it
	// bound (zero for a sandbox from Open).
	Duration time.Duration

	runner *runnerclient.Client
}

// Runner returns the client of the sandbox's runner, holding its token.
func (s *Sandbox) Runner() *runnerclient.Client { return s.runner }

// Exec runs a command in the sandbox, copying its output to stdout and
// stderr as it arrives (either may be nil), and returns its result.
func (s *Sandbox) Exec(ctx context.Context, req api.ExecuteRequest, stdout, stderr io.Writer) (*api.ExecuteResult, error) {
	res, err := s.runner.ExecuteStream(ctx, req, stdout, stderr)
	if err != nil {
		return nil, fmt.Errorf("executing in sandbox %s/%s: %w", s.Namespace, s.Claim, err)
	}
	return res, nil
}

// CopyTo writes r to path (relative to the runner's work directory) in the
// sandbox; mode 0 means 0644.
func (s *Sandbox) CopyTo(ctx context.Context, r io.Reader, path string, mode uint32) error {
	if err := s.runner.PutFile(ctx, path, r, mode); err != nil {
		return fmt.Errorf("copying to %s in sandbox %s/%s: %w", path, s.Namespace, s.Claim, err)
	}
	return nil
}

// CopyFrom writes the sandbox's file path to w.
func (s *Sandbox) CopyFrom(ctx context.Context, path string, w io.Writer) error {
	rc, err := s.runner.GetFile(ctx, path)
	if err != nil {
		return fmt.Errorf("copying %s from sandbox %s/%s: %w", path, s.Namespace, s.Claim, err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("copying %s from sandbox %s/%s: %w", path, s.Namespace, s.Claim, err)
	}
	return nil
}
