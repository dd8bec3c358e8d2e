package claimbench

import (
	"strings"
	"testing"
	"time"
)

func TestParseBoundLog(t *testing.T) {
	log := `I1208 not JSON at all
{"time":"2026-12-08T01:00:00.100Z","level":"INFO","msg":"pod injected","namespace":"ns","pod":"p-1"}
{"time":"2026-12-08T01:00:00.250Z","level":"INFO","msg":"claim bound","namespace":"ns","claim":"bench-a","pod":"p-1","origin":"Warm","took":30000000,"take":9000000,"runner":4000000,"status":8000000}
{"time":"2026-12-08T01:00:01.000Z","level":"INFO","msg":"claim bound","namespace":"other","claim":"bench-a","took":1000000,"take":0,"runner":0,"status":1000000}
`
	got, err := ParseBoundLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d lines parsed, want the two claim bound lines: %+v", len(got), got)
	}
	want := BoundLine{At: time.Date(2026, 12, 8, 1, 0, 0, 250e6, time.UTC), Took: 30 * time.Millisecond, Take: 9 * time.Millisecond, Runner: 4 * time.Millisecond, Status: 8 * time.Millisecond}
	if l := got["ns/bench-a"]; !l.At.Equal(want.At) || l.Took != want.Took || l.Take != want.Take || l.Runner != want.Runner || l.Status != want.Status {
		t.Errorf("ns/bench-a: %+v, want %+v", l, want)
	}
	if l := got["other/bench-a"]; l.Took != time.Millisecond {
		t.Errorf("other/bench-a (same name, another namespace): %+v", l)
	}
}

func TestSplit(t *testing.T) {
	start := time.Date(2026, 12, 8, 1, 0, 0, 200e6, time.UTC)
	// Seen 20 ms after the creation began, bound 30 ms later (the line at
	// +50 ms), Bound seen by the claimant at +52 ms, /execute done at +55.
	l := BoundLine{At: start.Add(50 * time.Millisecond), Took: 30 * time.Millisecond, Take: 9 * time.Millisecond, Runner: 4 * time.Millisecond, Status: 8 * time.Millisecond}
	got := Split(start, 52*time.Millisecond, 55*time.Millisecond, l)
	want := "created->seen 20.0 + take 9.0 + runner 4.0 + status 8.0 + other 9.0 + Bound->seen 2.0 + first /execute 3.0"
	if got != want {
		t.Errorf("Split:\n got %s\nwant %s", got, want)
	}
}
