package prepuller

import (
	"time"
)

// State is where one desired image stands.
type State string

// The states of a desired image.
const (
	// StateMissing: not present and not yet tried (waiting for its turn).
	StateMissing State = "missing"
	// StatePulling: a pull is in flight.
	StatePulling State = "pulling"
	// StatePresent: the runtime has the image.
	StatePresent State = "present"
	// StateFailed: the last pull failed; it is retried after NextRetry.
	StateFailed State = "failed"
	// StatePaused: missing, and not pulled because the image filesystem is
	// used above the threshold.
	StatePaused State = "paused"
)

// ImageStatus is the state of one desired image.
type ImageStatus struct {
	// Ref is the reference as desired; Name is its normalized form, as
	// the runtime lists it.
	Ref, Name string
	State     State
	// ImageID is the runtime's id of the image once pulled or seen.
	ImageID string
	// Size is the image's size in bytes as the runtime reports it.
	Size uint64
	// Attempts counts the failed pulls since the last success.
	Attempts int
	// LastError is the runtime's error of the last failed pull, which
	// carries the registry's answer; for StatePaused, why.
	LastError string
	// NextRetry is when a failed image may be pulled again.
	NextRetry time.Time
	// LastPulled is when the image was last pulled, or first seen present.
	LastPulled time.Time
}

// entry is the Puller's memory of one desired image.
type entry struct {
	ImageStatus
	auth     *AuthConfig
	byDigest bool
	invalid  bool // the reference does not parse: reported, never pulled
}

// planInput is what a Sync round decides on: pure data, so that the
// arithmetic is tested without a runtime.
type planInput struct {
	now     time.Time
	refresh time.Duration
	desired []Image
	present presentSet
	known   map[string]*entry // by normalized name (by Ref when invalid)
}

// plan returns the entries of this round (in desired order, deduplicated;
// images no longer desired are forgotten) and the ones to pull now:
//   - not present and never failed, or failed with its backoff expired or
//     with credentials that changed since;
//   - present by tag and last pulled longer than refresh ago (a moved tag).
//
// An image found present (pulled by us, the kubelet or anyone) is present,
// and its failure count is reset.
func plan(in planInput) (entries []*entry, pull []*entry) {
	seen := map[string]bool{}
	for _, img := range in.desired {
		n, err := normalize(img.Ref)
		key := n.name
		if err != nil {
			key = img.Ref
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		e := in.known[key]
		if e == nil {
			e = &entry{ImageStatus: ImageStatus{Ref: img.Ref, Name: n.name, State: StateMissing}}
		}
		authChanged := !authEqual(e.auth, img.Auth)
		e.auth = img.Auth
		e.byDigest = n.byDigest
		entries = append(entries, e)
		if err != nil {
			e.invalid = true
			e.State, e.LastError = StateFailed, err.Error()
			continue
		}
		if found, ok := in.present[key]; ok {
			if e.State != StatePresent || e.ImageID != found.GetId() {
				e.LastPulled = in.now
			}
			e.State, e.Attempts, e.LastError, e.NextRetry = StatePresent, 0, "", time.Time{}
			e.ImageID, e.Size = found.GetId(), found.GetSize()
			if !e.byDigest && in.refresh > 0 && !in.now.Before(e.LastPulled.Add(in.refresh)) {
				pull = append(pull, e)
			}
			continue
		}
		if e.State == StatePresent || e.State == StatePulling {
			// Gone since (garbage collected, removed by hand): pull again.
			e.State, e.ImageID, e.Size = StateMissing, "", 0
		}
		if e.State == StateFailed && in.now.Before(e.NextRetry) && !authChanged {
			continue // new credentials are tried at once
		}
		pull = append(pull, e)
	}
	return entries, pull
}

func authEqual(a, b *AuthConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
