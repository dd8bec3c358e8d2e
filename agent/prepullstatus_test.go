package agent

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"sandbox.io/injector/prepuller"
)

func TestStatusTrackerEvents(t *testing.T) {
	t.Parallel()
	st := []prepuller.ImageStatus{
		{Ref: "reg/a:v1", Name: "reg/a:v1", State: prepuller.StatePresent, Size: 3 << 20},
		{Ref: "busybox", Name: "docker.io/library/busybox:latest", State: prepuller.StateFailed},
	}
	regErr := status.Error(codes.Unknown, "failed to pull: unexpected status from HEAD request: 500 Internal Server Error")
	var tr statusTracker
	steps := []struct {
		name string
		in   reportInput
		want []string // "Reason: message substring"
	}{
		{
			name: "a first pull, a failure with the registry's error, a pause",
			in: reportInput{status: st, paused: "image filesystem /x is 91.0% used", outcomes: []PullOutcome{
				{Image: "reg/a:v1", After: "sha256:aaa", Took: 1500 * time.Millisecond},
				{Image: "docker.io/library/busybox:latest", Err: regErr},
			}},
			want: []string{
				"ImagePulled: pulled image reg/a:v1 in 1.5s (3.0 MiB)",
				"ImagePullFailed: pulling image busybox: failed to pull: unexpected status from HEAD request: 500 Internal Server Error",
				"ImagePullsPaused: image pulls paused: image filesystem /x is 91.0% used",
			},
		},
		{
			name: "the same failure again, a refresh of an unmoved tag, still paused: nothing",
			in: reportInput{status: st, paused: "image filesystem /x is 91.0% used", outcomes: []PullOutcome{
				{Image: "docker.io/library/busybox:latest", Err: regErr},
				{Image: "reg/a:v1", Before: "sha256:aaa", After: "sha256:aaa"},
				{Image: "reg/a:v1", Err: errors.New("context canceled"), Cancelled: true},
			}},
		},
		{
			name: "a moved tag, another error, resumed, a secret and the list go wrong",
			in: reportInput{status: st, problems: []string{"pull secret a/x (for busybox): not found"}, listErr: `line 2 "x y": bad`, outcomes: []PullOutcome{
				{Image: "reg/a:v1", Before: "sha256:aaaaaaaaaaaaaaaaaa", After: "sha256:bbb"},
				{Image: "docker.io/library/busybox:latest", Err: errors.New("401 Unauthorized")},
			}},
			want: []string{
				"ImagePulled: pulled image reg/a:v1 in 0s (3.0 MiB); the tag moved from aaaaaaaaaaaa",
				"ImagePullFailed: pulling image busybox: 401 Unauthorized",
				"ImagePullsResumed: image pulls resumed",
				"PullSecretUnreadable: pull secret a/x (for busybox): not found",
				"ImageListInvalid: line 2",
			},
		},
		{
			name: "the same problems: nothing; a success then the same failure: the failure again",
			in: reportInput{status: st, problems: []string{"pull secret a/x (for busybox): not found"}, listErr: `line 2 "x y": bad`, outcomes: []PullOutcome{
				{Image: "docker.io/library/busybox:latest", After: "sha256:ccc"},
				{Image: "docker.io/library/busybox:latest", Err: errors.New("401 Unauthorized")},
			}},
			want: []string{"ImagePulled: pulled image busybox", "ImagePullFailed: pulling image busybox: 401 Unauthorized"},
		},
	}
	for _, s := range steps {
		got := reasons(tr.events(s.in))
		if len(got) != len(s.want) {
			t.Fatalf("%s: events %q, want %d like %q", s.name, got, len(s.want), s.want)
		}
		for i := range got {
			if !strings.HasPrefix(got[i], s.want[i]) {
				t.Errorf("%s: event %d = %q, want it to start with %q", s.name, i, got[i], s.want[i])
			}
		}
	}

	// Many images pulled at once: bounded, with one Event for the rest.
	var many []PullOutcome
	for i := range 25 {
		many = append(many, PullOutcome{Image: fmt.Sprintf("reg/m%d:v1", i), After: "sha256:x"})
	}
	for n, want := range map[uint64]string{512: "512 B", 1536: "1.5 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
	got := reasons(tr.events(reportInput{outcomes: many}))
	if len(got) != maxPulledEvents+1 || got[maxPulledEvents] != "ImagePulled: pulled 15 more images" {
		t.Errorf("25 pulls gave %d events, last %q; want %d and one counting the rest", len(got), got[len(got)-1], maxPulledEvents+1)
	}
}

func TestAnnotationValue(t *testing.T) {
	t.Parallel()
	s := prepuller.Summary{Desired: 3, Present: 1, Failed: 1, Paused: 1, FirstFailure: "reg/x:v1: 500"}
	if got, want := annotationValue(s, "image filesystem / is 90% used", ""), "present 1/3, failed 1, paused 1 (reg/x:v1: 500); paused: image filesystem / is 90% used"; got != want {
		t.Errorf("annotation %q, want %q", got, want)
	}
	long := prepuller.Summary{Desired: 1, Failed: 1, FirstFailure: strings.Repeat("é", 2000)}
	if got := annotationValue(long, "", ""); len(got) > maxAnnotation || !strings.HasSuffix(got, "...") {
		t.Errorf("a long failure gives a %d-byte annotation, want at most %d ending in ...", len(got), maxAnnotation)
	}
	if got, want := annotationValue(s, "", "connection refused"), "present 1/3, failed 1, paused 1 (reg/x:v1: 500); failing: connection refused"; got != want {
		t.Errorf("annotation of a failing sync %q, want %q", got, want)
	}
}

// TestSyncFailureEvents: a sync that fails as a whole (the runtime does
// not answer) is one Warning, not one per retry, and its end one Normal.
func TestSyncFailureEvents(t *testing.T) {
	t.Parallel()
	var tr statusTracker
	steps := []struct {
		syncErr string
		want    []string
	}{
		{"", nil},
		{"connection refused", []string{"PrePullFailing: pre-pulling failed, retried every interval: connection refused"}},
		{"connection refused", nil},
		{"deadline exceeded", []string{"PrePullFailing: pre-pulling failed, retried every interval: deadline exceeded"}},
		{"", []string{"PrePullRecovered: pre-pulling works again after: deadline exceeded"}},
		{"", nil},
	}
	for i, s := range steps {
		got := reasons(tr.events(reportInput{syncErr: s.syncErr}))
		if strings.Join(got, "|") != strings.Join(s.want, "|") {
			t.Errorf("step %d (%q): events %q, want %q", i, s.syncErr, got, s.want)
		}
	}
}

// reasons writes events as "Reason: message".
func reasons(evs []nodeEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}
