package runner

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"sandbox.io/injector/runner/api"
)

// tokenSource holds the API token read from a file and re-reads it when the
// file changes (a Secret volume update swaps a symlink, which changes the
// inode and mtime that stat sees), so a rotated token takes effect without a
// restart. A missing or empty file means "no token". The file holds either
// the token, or only its verifier, "sha256:" and the token's SHA-256 in 64
// lower-case hex digits: then nothing in the sandbox can read the token
// itself (its own code reads the file as easily as the runner does), so a
// Secret shared by a namespace's sandboxes opens none of them to the others.
// A file that starts with "sha256:" but is no verifier closes the API.
type tokenSource struct {
	path string

	mu     sync.Mutex
	stamp  fileStamp
	digest [sha256.Size]byte
	set    bool
	// fixed is set by a claim: the claimant's token replaced the file's,
	// which is no longer read.
	fixed bool
	// malformed says why the file's verifier was refused, while it is.
	malformed error
}

type fileStamp struct {
	ino   uint64
	dev   uint64
	size  int64
	mtime time.Time
	found bool
}

func newTokenSource(path string) *tokenSource {
	t := &tokenSource{path: path}
	t.current()
	return t
}

// current returns the digest of the token and whether one is configured.
func (t *tokenSource) current() ([sha256.Size]byte, bool) {
	t.mu.Lock()
	if t.fixed {
		defer t.mu.Unlock()
		return t.digest, true
	}
	t.mu.Unlock()
	if t.path == "" {
		return [sha256.Size]byte{}, false
	}
	st := statFile(t.path)
	t.mu.Lock()
	defer t.mu.Unlock()
	if st == t.stamp {
		return t.digest, t.set
	}
	t.stamp = st
	t.set, t.malformed = false, nil
	if !st.found {
		return t.digest, false
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return t.digest, false
	}
	tok := bytes.TrimSpace(b)
	if len(tok) == 0 {
		return t.digest, false
	}
	if bytes.HasPrefix(tok, []byte(verifierPrefix)) {
		d, err := parseVerifier(string(tok))
		if err != nil {
			// Said to every client: nothing of the file's content.
			t.malformed = fmt.Errorf("the token file %s holds no token but a malformed verifier (%s and 64 lower-case hex digits), so the API is closed (only /healthz and /readyz answer)", t.path, verifierPrefix)
			return t.digest, false
		}
		t.digest = d
	} else {
		t.digest = sha256.Sum256(tok)
	}
	t.set = true
	return t.digest, true
}

// verifierPrefix starts a verifier: a claim verifier, or a token file that
// holds only the token's SHA-256.
const verifierPrefix = "sha256:"

// closedBecause says why no token is configured: the file's malformed
// verifier, else errNoToken.
func (t *tokenSource) closedBecause() (malformed bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.malformed != nil {
		return true, t.malformed
	}
	return false, errNoToken
}

// replace makes the token whose SHA-256 is digest the only accepted one
// from now on, for good.
func (t *tokenSource) replace(digest [sha256.Size]byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.digest, t.set, t.fixed = digest, true, true
}

func statFile(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime(), found: true}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino, st.dev = sys.Ino, sys.Dev
	}
	return st
}

var (
	errNoToken = errors.New("no API token is configured for this runner, so its API is closed (only /healthz and /readyz answer); " +
		"create the pod's token Secret, or claim the sandbox")
	errNotClaimed   = errors.New("this sandbox is not claimed yet: its API opens to the claimant's token at POST /claim")
	errClaimOnly    = errors.New("the claim credential authorizes POST /claim only")
	errStaleRequest = errors.New("the sandbox was claimed after this request was authorized; send it again with the claimant's token")
)

// grant is what an authorized request may do.
type grant struct {
	// claimOnly: the request carries the claim credential of an unclaimed
	// sandbox, which opens POST /claim and nothing else.
	claimOnly bool
	// epoch is the credential generation the request was authorized under;
	// a claim starts a new one, and work authorized under an older one is
	// refused (stillValid) even when its body arrives after the claim.
	epoch uint64
}

type grantKey struct{}

// authorize checks a request that needs a credential. It returns the HTTP
// status to refuse with and why, or 0 and what the request may do.
func (s *Server) authorize(r *http.Request) (int, grant, error) {
	epoch := s.epoch.Load()
	got, hasBearer := bearer(r)
	v, hasVerifier, claimed := s.claimState()
	if hasVerifier && (!claimed || r.URL.Path == api.PathClaim) && hasBearer {
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], v[:]) == 1 {
			// The claim credential opens POST /claim and nothing else; after
			// the claim it may only repeat the same claim (a controller that
			// lost its leadership mid-claim retries it).
			if r.Method != http.MethodPost || r.URL.Path != api.PathClaim {
				return http.StatusForbidden, grant{}, errClaimOnly
			}
			return 0, grant{claimOnly: true, epoch: epoch}, nil
		}
	}
	if hasVerifier && !claimed {
		// An unclaimed sandbox of a pool: nothing but the claim credential
		// works.
		switch {
		case !hasBearer:
			return http.StatusUnauthorized, grant{}, errMissingBearer
		case r.URL.Path == api.PathClaim:
			return http.StatusUnauthorized, grant{}, errors.New("invalid claim credential")
		}
		return http.StatusForbidden, grant{}, errNotClaimed
	}
	want, ok := s.token.current()
	if !ok {
		// A malformed verifier closes the API to loopback clients too: the
		// file meant to configure a token.
		malformed, why := s.token.closedBecause()
		if !malformed && s.cfg.InsecureLoopback && isLoopback(r.RemoteAddr) {
			return 0, grant{epoch: epoch}, nil
		}
		return http.StatusForbidden, grant{}, why
	}
	if !hasBearer {
		return http.StatusUnauthorized, grant{}, errMissingBearer
	}
	// Comparing digests keeps the time independent of the token's length too.
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
		return http.StatusUnauthorized, grant{}, errors.New("invalid bearer token")
	}
	return 0, grant{epoch: epoch}, nil
}

var errMissingBearer = errors.New("missing bearer token (Authorization: Bearer, or " + api.TokenHeader + ")")

// bearer returns the request's token: the X-Sandbox-Token header (the API
// server's pod proxy consumes Authorization), else the bearer of
// Authorization.
func bearer(r *http.Request) (string, bool) {
	if got := strings.TrimSpace(r.Header.Get(api.TokenHeader)); got != "" {
		return got, true
	}
	h := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	got := strings.TrimSpace(h[len(scheme):])
	return got, got != ""
}

// claimState returns the digest of the claim credential, whether the
// runner takes claims at all, and whether it was claimed.
func (s *Server) claimState() (v [sha256.Size]byte, hasVerifier, claimed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claimVerifier, s.hasVerifier, s.claimed != nil
}

// verifier returns the digest of the claim credential while the sandbox
// waits for its claim; ok is false once claimed, and for runners that take
// no claims.
func (s *Server) verifier() ([sha256.Size]byte, bool) {
	v, has, claimed := s.claimState()
	return v, has && !claimed
}

// stillValid reports whether the request's credential still holds: no
// claim happened since it was authorized. Handlers call it right before
// they act, so that a request authorized under an earlier credential whose
// body arrives after the claim does nothing.
func (s *Server) stillValid(r *http.Request) bool {
	g, ok := r.Context().Value(grantKey{}).(grant)
	return ok && g.epoch == s.epoch.Load()
}

// parseVerifier reads a verifier: Config.ClaimVerifier, or a token file
// that holds only the token's SHA-256.
func parseVerifier(v string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	hexDigest, ok := strings.CutPrefix(v, verifierPrefix)
	if !ok || !api.IsSHA256Hex(hexDigest) {
		return out, fmt.Errorf("verifier %q is not sha256: followed by 64 lower-case hex digits", v)
	}
	_, err := hex.Decode(out[:], []byte(hexDigest))
	return out, err
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return a.Unmap().IsLoopback()
}
