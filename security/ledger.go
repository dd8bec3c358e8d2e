package security

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Outcome is the result of one replayed attack.
type Outcome struct {
	// Area is the component attacked ("runner", "webhook", "certs", ...).
	Area string
	// Name says what the attack tries.
	Name string
	// Refused is true when the defence held.
	Refused bool
	// Detail says what the attacker achieved when the attack succeeded,
	// or why the outcome is unknown.
	Detail string
}

// Ledger records outcomes; it is safe for concurrent use.
type Ledger struct {
	mu       sync.Mutex
	outcomes []Outcome
}

// Record adds one outcome.
func (l *Ledger) Record(o Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outcomes = append(l.outcomes, o)
}

// Outcomes returns the outcomes recorded so far, sorted by area and name.
func (l *Ledger) Outcomes() []Outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.outcomes)
	slices.SortFunc(out, func(a, b Outcome) int {
		if c := strings.Compare(a.Area, b.Area); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// Counts returns how many attacks were tried and how many were refused.
func (l *Ledger) Counts() (tried, refused int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.outcomes {
		tried++
		if o.Refused {
			refused++
		}
	}
	return tried, refused
}

// Report is the suite's closing text: one line per attack that succeeded,
// then "attacks tried: N, refused: M".
func (l *Ledger) Report() string {
	var b strings.Builder
	for _, o := range l.Outcomes() {
		if !o.Refused {
			fmt.Fprintf(&b, "SUCCEEDED %s: %s: %s\n", o.Area, o.Name, o.Detail)
		}
	}
	tried, refused := l.Counts()
	fmt.Fprintf(&b, "attacks tried: %d, refused: %d\n", tried, refused)
	return b.String()
}
