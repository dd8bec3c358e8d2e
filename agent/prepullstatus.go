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

type nodeEvent struct {
	Type, Reason, Message string
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
			out = append(out, nodeEvent{corev1.EventTypeWarning, ReasonImagePullFailed,
				fmt.Sprintf("pulling image %s: %s", ref, msg)})
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
			out = append(out, nodeEvent{corev1.EventTypeNormal, ReasonImagePulled, msg})
		}
	}
	if pulled > maxPulledEvents {
		out = append(out, nodeEvent{corev1.EventTypeNormal, ReasonImagePulled,
			fmt.Sprintf("pulled %d more images", pulled-maxPulledEvents)})
	}
	// Forget failures of images no longer desired.
	for n := range s.lastFailure {
		if _, ok := byName[n]; !ok && len(in.status) > 0 {
			delete(s.lastFailure, n)
		}
	}
	if in.paused != s.paused {
		if in.paused != "" {
			out = append(out, nodeEvent{corev1.EventTypeWarning, ReasonImagePullsPaused, "image pulls paused: " + in.paused})
		} else {
			out = append(out, nodeEvent{corev1.EventTypeNormal, ReasonImagePullsResumed, "image pulls resumed: " + s.paused + " no longer holds"})
		}
		s.paused = in.paused
	}
	if p := strings.Join(in.problems, "; "); p != s.problems {
		if p != "" {
			out = append(out, nodeEvent{corev1.EventTypeWarning, ReasonPullSecretUnreadable, p})
		}
		s.problems = p
	}
	if in.syncErr != s.syncErr {
		switch {
		case in.syncErr != "":
			out = append(out, nodeEvent{corev1.EventTypeWarning, ReasonPrePullFailing, "pre-pulling failed, retried every interval: " + in.syncErr})
		case s.syncErr != "":
			out = append(out, nodeEvent{corev1.EventTypeNormal, ReasonPrePullRecovered, "pre-pulling works again after: " + s.syncErr})
		}
		s.syncErr = in.syncErr
	}
	if in.listErr != s.listErr {
		if in.listErr != "" {
			out = append(out, nodeEvent{corev1.EventTypeWarning, ReasonImageListInvalid, in.listErr})
		}
		s.listErr = in.listErr
	}
	return out
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
