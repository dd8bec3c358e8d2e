package runner

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"sandbox.io/injector/runner/api"
)

var errAlreadyClaimed = errors.New("this sandbox is already claimed")

// maxClaimBytes caps the body of POST /claim: a digest and some variables.
const maxClaimBytes = 1 << 20

// claim answers POST /claim: the runner of a warm sandbox switches to its
// claimant. The request was authorized with the pod's claim credential,
// which stops working here; from now on only the token whose digest the
// claim carries is accepted. Everything that was running or in flight
// under the earlier credential is cancelled (its commands killed), and a
// request authorized before the switch is refused even if its body arrives
// after it. A runner is claimed once: a second claim gets 409 Conflict.
func (s *Server) claim(w http.ResponseWriter, r *http.Request) {
	req, err := api.DecodeClaimRequest(http.MaxBytesReader(w, r.Body, maxClaimBytes))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			s.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("claim request is larger than the limit of %d bytes", mbe.Limit))
			return
		}
		s.failClaim(w, r, http.StatusBadRequest, err)
		return
	}
	var digest [32]byte
	if _, err := hex.Decode(digest[:], []byte(req.TokenSHA256)); err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("token_sha256: %w", err))
		return
	}
	s.mu.Lock()
	if s.claimed != nil {
		g, _ := r.Context().Value(grantKey{}).(grant)
		if g.claimOnly && digest == s.claimDigest {
			// The same claim again, with the claim credential: a controller
			// repeating a claim it is not sure went through.
			st := *s.claimed
			s.mu.Unlock()
			s.writeJSON(w, http.StatusOK, &st)
			return
		}
		s.mu.Unlock()
		s.failClaim(w, r, http.StatusConflict, errAlreadyClaimed)
		return
	}
	st := &api.ClaimStatus{
		Protocol:  api.ClaimProtocol,
		Claimant:  req.Claimant,
		ClaimedAt: time.Now().UTC(),
		EnvKeys:   slices.Sorted(maps.Keys(req.Env)),
	}
	if len(req.Env) > 0 {
		env := mergeEnv(*s.exec.env.Load(), req.Env)
		s.exec.env.Store(&env)
	}
	s.token.replace(digest)
	s.claimed, s.claimDigest = st, digest
	s.mu.Unlock()
	killed := s.inflight.newEpoch(&s.epoch)
	s.log.Info("sandbox claimed", "claimant", st.Claimant, "env", st.EnvKeys, "cancelled", killed)
	s.writeJSON(w, http.StatusOK, st)
}

// failClaim refuses a POST /claim, naming the claim protocol this runner
// speaks (api.Error.ClaimProtocol) so that the controller can tell a
// protocol it cannot talk to from a refused claim.
func (s *Server) failClaim(w http.ResponseWriter, _ *http.Request, code int, err error) {
	if rec, ok := w.(*recorder); ok {
		rec.errMsg = err.Error()
	}
	s.writeJSON(w, code, api.Error{Error: err.Error(), ClaimProtocol: api.ClaimProtocol})
}

// claimStatus is a copy of the accepted claim, nil while unclaimed.
func (s *Server) claimStatus() *api.ClaimStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claimed == nil {
		return nil
	}
	c := *s.claimed
	c.EnvKeys = slices.Clone(c.EnvKeys)
	return &c
}

// inflight tracks the authorized requests being served, so that a claim can
// cancel everything started under an earlier credential.
type inflight struct {
	mu      sync.Mutex
	next    uint64
	cancels map[uint64]context.CancelFunc
}

// begin registers a request authorized under epoch. It returns a context
// cancelled when a claim starts a new epoch, and the function that ends the
// registration; ok is false when the epoch is already over.
func (f *inflight) begin(parent context.Context, epoch uint64, current interface{ Load() uint64 }) (context.Context, func(), bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if epoch != current.Load() {
		return nil, nil, false
	}
	ctx, cancel := context.WithCancel(parent)
	if f.cancels == nil {
		f.cancels = map[uint64]context.CancelFunc{}
	}
	id := f.next
	f.next++
	f.cancels[id] = cancel
	return ctx, func() {
		f.mu.Lock()
		delete(f.cancels, id)
		f.mu.Unlock()
		cancel()
	}, true
}

// newEpoch moves epoch on and cancels every registered request; it returns
// how many there were.
func (f *inflight) newEpoch(epoch interface{ Add(uint64) uint64 }) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	epoch.Add(1)
	n := len(f.cancels)
	for id, cancel := range f.cancels {
		cancel()
		delete(f.cancels, id)
	}
	return n
}
