package agent

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
)

// maxEventMessage caps an Event's note (the API server refuses more than 1
// KiB in a note of the events.k8s.io form).
const maxEventMessage = 1024

// defaultComponent is the reporting controller of the agent's Events: the
// name of the manager's recorder when a Config leaves its Recorder unset.
const defaultComponent = "sandbox-agent"

// eventf records an Event about regarding through rec (an events.k8s.io
// recorder, which aggregates repeats into a series and writes
// asynchronously), its note cut to what the API server accepts. A nil rec
// records none.
func eventf(rec events.EventRecorder, regarding *corev1.ObjectReference, eventtype, reason, action, note string) {
	if rec == nil {
		return
	}
	rec.Eventf(regarding, nil, eventtype, reason, action, "%s", truncate(note, maxEventMessage))
}

// nodeRef refers to a Node in an Event (its Events go to namespace
// default, as the kubelet's do).
func nodeRef(node *corev1.Node) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Node", Name: node.Name, UID: node.UID, APIVersion: "v1"}
}

// imageFieldPath is the part of a Node an Event about one of its images
// refers to, as the kubelet's container Events name spec.containers{name}.
// The recorder aggregates the Events of one object, reason and action into
// one series: without it, the first image's Event would stand for all.
func imageFieldPath(image string) string {
	return "status.images{" + image + "}"
}
