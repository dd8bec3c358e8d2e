package runner

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"sandbox.io/injector/runner/api"
)

var errAlreadyClaimed = errors.New("this sandbox is already claimed")

// maxClaimBytes caps the body of POST /claim: a token and some variables.
const maxClaimBytes = 1 << 20

// claim answers POST /claim: the runner of a warm sandbox takes its
// claimant's token and environment. The request was authorized with the
// token the runner had until now; from here on only the new one works. A
// runner is claimed once: a second claim gets 409 Conflict, so a claimant
// that lost a race cannot take over the winner's sandbox.
func (s *Server) claim(w http.ResponseWriter, r *http.Request) {
	req, err := api.DecodeClaimRequest(http.MaxBytesReader(w, r.Body, maxClaimBytes))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			s.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("claim request is larger than the limit of %d bytes", mbe.Limit))
			return
		}
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	s.mu.Lock()
	if s.claimed != nil {
		s.mu.Unlock()
		s.fail(w, r, http.StatusConflict, errAlreadyClaimed)
		return
	}
	st := &api.ClaimStatus{
		Claimant:  req.Claimant,
		ClaimedAt: time.Now().UTC(),
		EnvKeys:   slices.Sorted(maps.Keys(req.Env)),
	}
	if len(req.Env) > 0 {
		env := mergeEnv(*s.exec.env.Load(), req.Env)
		s.exec.env.Store(&env)
	}
	s.token.replace(req.Token)
	s.claimed = st
	s.mu.Unlock()
	s.log.Info("sandbox claimed", "claimant", st.Claimant, "env", st.EnvKeys)
	s.writeJSON(w, http.StatusOK, st)
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
