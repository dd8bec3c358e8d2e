package testenv

import (
	"testing"

	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
)

// Recorder returns an events.k8s.io recorder that writes through cfg as
// component, as a manager's GetEventRecorder(component) does, for code
// tested without a manager. It writes asynchronously (poll for its Events)
// and stops when the test ends.
func Recorder(t testing.TB, cfg *rest.Config, component string) events.EventRecorder {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("creating the event recorder's clientset: %v", err)
	}
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	if err := b.StartRecordingToSinkWithContext(t.Context()); err != nil {
		t.Fatalf("starting the event recorder: %v", err)
	}
	t.Cleanup(b.Shutdown)
	return b.NewRecorder(clientgoscheme.Scheme, component)
}
