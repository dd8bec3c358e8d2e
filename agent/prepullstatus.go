package agent

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	"sandbox.io/injector/prepuller"
)

// Reasons of the Events the pre-puller records on its Node.
const (
	ReasonImagePulled          = "ImagePulled"
	ReasonImagePullFailed      = "ImagePullFailed"
	ReasonImagePullsPaused     = "ImagePullsPaused"
	ReasonImagePullsResumed    = "ImagePullsResumed"
	ReasonPullSecretUnreadable = "PullSecretUnreadable"
	ReasonImageListInvalid     = "ImageListInvalid"
	ReasonPrePullFailing       = "PrePullFailing"
	ReasonPrePullRecovered     = "PrePullRecovered"
)

// maxPulledEvents bounds the ImagePulled Events of one report; the rest are
// counted in one more Event, so that a long list pulled at once is not an
// Event storm.
const maxPulledEvents = 10

// maxAnnotation bounds the node annotation (a registry's error can be long).
const maxAnnotation = 1024

// Actions of the pre-puller's Events (the events.k8s.io action: what the
// agent was doing).
const (
	actionPull      = "Pull"
	actionPrePull   = "PrePull"
	actionReadList  = "ReadImageList"
	actionReadCreds = "ReadPullSecret"
)

// nodeEvent is one Event on the Node. Image, when set, is the image it is
// about: the recorder aggregates Events of one reason into a series, so
// each image's Events go on a part of the Node of their own (see
// imageFieldPath) to stay apart from the other images'.
type nodeEvent struct {
	Type, Reason, Action, Message string
	Image                         string
}

// statusTracker decides which Events to record: only changes. A pull that
// brought a new image is one; a failure is one when the image's error
// differs from its last one (a retry that fails the same way is not); a
// pause and its end are one each; so are a change of the unreadable pull
// secrets and of the list's errors.
type statusTracker struct {
	lastFailure map[string]string // image name -> error
	paused      string
	problems    string
	listErr     string
	syncErr     string
}

// reportInput is one look at the pre-puller.
type reportInput struct {
	outcomes []PullOutcome
	status   []prepuller.ImageStatus
	paused   string
	problems []string
	listErr  string
	// syncErr is why the last sync failed as a whole (the container
	// runtime did not answer, say); "" when it ran.
	syncErr string
}

func (s *statusTracker) events(in reportInput) []nodeEvent {
	if s.lastFailure == nil {
		s.lastFailure = map[string]string{}
	}
	byName := map[string]prepuller.ImageStatus{}
	for _, st := range in.status {
		byName[st.Name] = st
	}
	var out []nodeEvent
	pulled := 0
	for _, o := range in.outcomes {
		ref := o.Image
		if st, ok := byName[o.Image]; ok {
			ref = st.Ref
		}
		switch {
		case o.Cancelled:
		case o.Err != nil:
			msg := errorText(o.Err)
			if s.lastFailure[o.Image] == msg {
				continue
			}
			s.lastFailure[o.Image] = msg
			out = append(out, nodeEvent{Type: corev1.EventTypeWarning, Reason: ReasonImagePullFailed, Action: actionPull,
				Message: fmt.Sprintf("pulling image %s: %s", ref, msg), Image: ref})
		default:
			delete(s.lastFailure, o.Image)
			if o.Before == o.After {
				continue // a refresh of a tag that did not move
			}
			pulled++
			if pulled > maxPulledEvents {
				continue
			}
			msg := fmt.Sprintf("pulled image %s in %s", ref, o.Took.Round(10*time.Millisecond))
			if st, ok := byName[o.Image]; ok && st.Size > 0 {
				msg += " (" + humanSize(st.Size) + ")"
			}
			if o.Before != "" {
				msg += fmt.Sprintf("; the tag moved from %s", shortID(o.Before))
			}
			out = append(out, nodeEvent{Type: corev1.EventTypeNormal, Reason: ReasonImagePulled, Action: actionPull, Message: msg, Image: ref})
		}
	}
	if pulled > maxPulledEvents {
		out = append(out, nodeEvent{Type: corev1.EventTypeNormal, Reason: ReasonImagePulled, Action: actionPull,
			Message: fmt.Sprintf("pulled %d more images", pulled-maxPulledEvents)})
	}
	// Forget failures of images no longer desired.
	for n := range s.lastFailure {
		if _, ok := byName[n]; !ok && len(in.status) > 0 {
			delete(s.lastFailure, n)
		}
	}
	for _, c := range []change{
		{&s.paused, in.paused,
			func(p string) nodeEvent {
				return nodeEvent{Type: corev1.EventTypeWarning, Reason: ReasonImagePullsPaused, Action: actionPull, Message: "image pulls paused: " + p}
			},
			func(was string) nodeEvent {
				return nodeEvent{Type: corev1.EventTypeNormal, Reason: ReasonImagePullsResumed, Action: actionPull, Message: "image pulls resumed: " + was + " no longer holds"}
			}},
		{&s.problems, strings.Join(in.problems, "; "), warning(ReasonPullSecretUnreadable, actionReadCreds, ""), nil},
		{&s.syncErr, in.syncErr, warning(ReasonPrePullFailing, actionPrePull, "pre-pulling failed, retried every interval: "),
			func(was string) nodeEvent {
				return nodeEvent{Type: corev1.EventTypeNormal, Reason: ReasonPrePullRecovered, Action: actionPrePull, Message: "pre-pulling works again after: " + was}
			}},
		{&s.listErr, in.listErr, warning(ReasonImageListInvalid, actionReadList, ""), nil},
	} {
		if ev, ok := c.event(); ok {
			out = append(out, ev)
		}
	}
	return out
}

// change is one condition the tracker follows as a string ("" when it does
// not hold): an Event when it starts to hold or changes, and, when cleared
// is set, one when it ends.
type change struct {
	last    *string
	now     string
	set     func(now string) nodeEvent
	cleared func(was string) nodeEvent
}

// event moves last to now and returns the Event of the change, if any.
func (c change) event() (nodeEvent, bool) {
	was := *c.last
	if c.now == was {
		return nodeEvent{}, false
	}
	*c.last = c.now
	switch {
	case c.now != "":
		return c.set(c.now), true
	case c.cleared != nil:
		return c.cleared(was), true
	}
	return nodeEvent{}, false
}

// warning is a change's set: a Warning whose message is prefix and the
// condition.
func warning(reason, action, prefix string) func(string) nodeEvent {
	return func(now string) nodeEvent {
		return nodeEvent{Type: corev1.EventTypeWarning, Reason: reason, Action: action, Message: prefix + now}
	}
}

// errorText is the runtime's message of a gRPC error (which carries the
// registry's answer), without the gRPC code prefix.
func errorText(err error) string {
	return status.Convert(err).Message()
}

// humanSize writes n bytes in the largest unit that keeps it at least 1.
func humanSize(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// annotationValue is the node annotation: the puller's summary line, why
// pulls are paused when they are, and why the last sync failed when it did
// (the summary then is the last one the runtime gave).
func annotationValue(s prepuller.Summary, paused, syncErr string) string {
	v := s.String()
	if paused != "" {
		v += "; paused: " + paused
	}
	if syncErr != "" {
		v += "; failing: " + syncErr
	}
	return truncate(v, maxAnnotation)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n-3]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}
