package claimbench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// BoundLine is what the claim controller's "claim bound" log line says of
// one binding: when the line was written (just after the Bound status
// write returned), the binding's time from when the controller first saw
// the claim, and within it the pod's updates (take), the runner's POST
// /claim (runner) and the status write.
type BoundLine struct {
	At                         time.Time
	Took, Take, Runner, Status time.Duration
}

// ParseBoundLog reads the claim controller's JSON log and returns its
// "claim bound" lines by claim, as namespace/name (the last line of each
// claim wins). Lines that are not JSON are skipped.
func ParseBoundLog(r io.Reader) (map[string]BoundLine, error) {
	out := map[string]BoundLine{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var l struct {
			Time                       time.Time
			Msg, Namespace, Claim      string
			Took, Take, Runner, Status time.Duration
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "claim bound" || l.Claim == "" {
			continue
		}
		out[l.Namespace+"/"+l.Claim] = BoundLine{At: l.Time, Took: l.Took, Take: l.Take, Runner: l.Runner, Status: l.Status}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the claim controller's log: %w", err)
	}
	return out, nil
}

// Split says where a timed claim's time went, joining the claimant's
// clock (start: just before the claim's creation; boundSeen: when it saw
// the claim Bound, and total: when its first /execute answered, both from
// start) with the controller's log line of the same claim (the cluster
// runs on the bench's machine: one clock). created->seen is the claim's
// creation and its watch event to the controller, and the controller's
// queue; other is the binding's time outside its steps (cache reads, the
// claimant token's digest); Bound->seen is the status write's watch event
// to the claimant.
func Split(start time.Time, boundSeen, total time.Duration, l BoundLine) string {
	seen := l.At.Add(-l.Took).Sub(start)
	other := l.Took - l.Take - l.Runner - l.Status
	var b strings.Builder
	fmt.Fprintf(&b, "created->seen %s + take %s + runner %s + status %s", msf(seen), msf(l.Take), msf(l.Runner), msf(l.Status))
	fmt.Fprintf(&b, " + other %s + Bound->seen %s + first /execute %s", msf(other), msf(start.Add(boundSeen).Sub(l.At)), msf(total-boundSeen))
	return b.String()
}

// msf is d as ms prints it, without the unit (Split's line says it once).
func msf(d time.Duration) string { return strings.TrimSuffix(ms(d), " ms") }
