package prepuller

import (
	"fmt"
	"strings"
)

// Summary counts the desired images by state: the compact status the agent
// publishes on its Node (see String).
type Summary struct {
	Desired, Present, Pulling, Missing, Failed, Paused int
	// FirstFailure is the reference and error of one failed image (the
	// first by reference), "" when none failed.
	FirstFailure string
}

// Summary summarizes Status.
func (p *Puller) Summary() Summary {
	var s Summary
	for _, st := range p.Status() {
		s.Desired++
		switch st.State {
		case StatePresent:
			s.Present++
		case StatePulling:
			s.Pulling++
		case StateMissing:
			s.Missing++
		case StateFailed:
			s.Failed++
			if s.FirstFailure == "" {
				s.FirstFailure = st.Ref + ": " + st.LastError
			}
		case StatePaused:
			s.Paused++
		}
	}
	return s
}

// String is the one-line form, e.g.
// "present 5/7, pulling 1, failed 1 (r: error)"; counts that are zero
// are left out, present never.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "present %d/%d", s.Present, s.Desired)
	for _, c := range []struct {
		name string
		n    int
	}{{"pulling", s.Pulling}, {"missing", s.Missing}, {"failed", s.Failed}, {"paused", s.Paused}} {
		if c.n > 0 {
			fmt.Fprintf(&b, ", %s %d", c.name, c.n)
		}
	}
	if s.FirstFailure != "" {
		fmt.Fprintf(&b, " (%s)", s.FirstFailure)
	}
	return b.String()
}
