package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// maxEventMessage caps an Event's message (the API server refuses more
// than 1 KiB in a message of the events.k8s.io form).
const maxEventMessage = 1024

// agentEvent is one Event the agent records, as a recorder would: about
// obj, in namespace (the object's own, or "default" for a Node, as the
// kubelet's node Events are), from component on node.
type agentEvent struct {
	About     corev1.ObjectReference
	Namespace string
	Component string
	Node      string
	Type      string
	Reason    string
	Message   string
	At        time.Time
}

// recordEvent creates ev through c. It does not aggregate: callers record
// only changes, so there is nothing to count.
func recordEvent(ctx context.Context, c client.Client, ev agentEvent) error {
	if ev.Component == "" {
		ev.Component = "sandbox-agent"
	}
	msg := ev.Message
	if len(msg) > maxEventMessage {
		msg = msg[:maxEventMessage-3] + "..."
	}
	at := metav1.NewTime(ev.At)
	obj := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: ev.About.Name + ".", Namespace: ev.Namespace},
		InvolvedObject:      ev.About,
		Reason:              ev.Reason,
		Message:             msg,
		Type:                ev.Type,
		Source:              corev1.EventSource{Component: ev.Component, Host: ev.Node},
		ReportingController: "sandbox.io/" + ev.Component,
		ReportingInstance:   ev.Component + "-" + ev.Node,
		FirstTimestamp:      at,
		LastTimestamp:       at,
		Count:               1,
	}
	if err := c.Create(ctx, obj); err != nil {
		return fmt.Errorf("recording event %s on %s %s: %w", ev.Reason, ev.About.Kind, ev.About.Name, err)
	}
	return nil
}

// nodeRef refers to a Node in an Event.
func nodeRef(node *corev1.Node) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: "Node", Name: node.Name, UID: node.UID, APIVersion: "v1"}
}
