package runner

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
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
// restart. A missing or empty file means "no token".
type tokenSource struct {
	path string

	mu     sync.Mutex
	stamp  fileStamp
	digest [sha256.Size]byte
	set    bool
	// fixed is set by a claim: the claimant's token replaced the file's,
	// which is no longer read.
	fixed bool
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
	t.set = false
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
	t.digest = sha256.Sum256(tok)
	t.set = true
	return t.digest, true
}

// replace makes token the only accepted one from now on, for good.
func (t *tokenSource) replace(token string) {
	sum := sha256.Sum256([]byte(token))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.digest, t.set, t.fixed = sum, true, true
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

var errNoToken = errors.New("no API token is configured for this runner, so its API answers only loopback clients (kubectl port-forward)")

// authorize checks a request that needs the token. It returns the HTTP
// status to refuse with and why, or 0.
func (s *Server) authorize(r *http.Request) (int, error) {
	want, ok := s.token.current()
	if !ok {
		if isLoopback(r.RemoteAddr) {
			return 0, nil
		}
		return http.StatusForbidden, errNoToken
	}
	got := r.Header.Get(api.TokenHeader)
	if got == "" {
		h := r.Header.Get("Authorization")
		const scheme = "bearer "
		if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
			return http.StatusUnauthorized, errors.New("missing bearer token (Authorization: Bearer, or " + api.TokenHeader + ")")
		}
		got = h[len(scheme):]
	}
	// Comparing digests keeps the time independent of the token's length too.
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
		return http.StatusUnauthorized, errors.New("invalid bearer token")
	}
	return 0, nil
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
