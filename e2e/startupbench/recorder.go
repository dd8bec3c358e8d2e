package startupbench

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// Recorder watches the pods and Events of one namespace and keeps, for each
// pod it created, when each step was first seen.
type Recorder struct {
	kube kubernetes.Interface
	ns   string

	mu   sync.Mutex
	pods map[string]*track
}

type track struct {
	start   time.Time
	seen    map[string]time.Time
	ready   chan struct{}
	isReady bool
	last    *corev1.Pod
}

// NewRecorder starts watching ns until ctx is done.
func NewRecorder(ctx context.Context, kube kubernetes.Interface, ns string) (*Recorder, error) {
	r := &Recorder{kube: kube, ns: ns, pods: map[string]*track{}}
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("listing pods of %s: %w", ns, err)
	}
	pw, err := watchtools.NewRetryWatcherWithContext(ctx, pods.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return kube.CoreV1().Pods(ns).Watch(ctx, o)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watching pods of %s: %w", ns, err)
	}
	events, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		pw.Stop()
		return nil, fmt.Errorf("listing events of %s: %w", ns, err)
	}
	ew, err := watchtools.NewRetryWatcherWithContext(ctx, events.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return kube.CoreV1().Events(ns).Watch(ctx, o)
		},
	})
	if err != nil {
		pw.Stop()
		return nil, fmt.Errorf("watching events of %s: %w", ns, err)
	}
	go r.loop(ctx, pw, ew)
	return r, nil
}

func (r *Recorder) loop(ctx context.Context, pw, ew watch.Interface) {
	defer pw.Stop()
	defer ew.Stop()
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return
		case ev, ok = <-pw.ResultChan():
		case ev, ok = <-ew.ResultChan():
		}
		if !ok {
			return
		}
		now := time.Now()
		if ev.Type != watch.Added && ev.Type != watch.Modified {
			continue
		}
		r.observe(now, ev.Object)
	}
}

var fieldPathRE = regexp.MustCompile(`^spec\.(containers|initContainers|ephemeralContainers|volumes)\{(.*)\}$`)

// eventMark names an Event's mark: "event <reason>" and the container (or
// "init <container>", or "volume <name>") it is about.
func eventMark(ev *corev1.Event) string {
	name := "event " + ev.Reason
	if m := fieldPathRE.FindStringSubmatch(ev.InvolvedObject.FieldPath); m != nil {
		switch m[1] {
		case "containers":
			return name + " " + m[2]
		case "initContainers":
			return name + " init " + m[2]
		case "volumes":
			return name + " volume " + m[2]
		}
		return name + " " + m[1] + " " + m[2]
	}
	if ev.InvolvedObject.FieldPath != "" {
		return name + " " + ev.InvolvedObject.FieldPath
	}
	return name
}

func (r *Recorder) observe(now time.Time, obj runtime.Object) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch o := obj.(type) {
	case *corev1.Event:
		if o.InvolvedObject.Kind != "Pod" {
			return
		}
		if t := r.pods[o.InvolvedObject.Name]; t != nil {
			t.mark(eventMark(o), now)
		}
	case *corev1.Pod:
		t := r.pods[o.Name]
		if t == nil {
			return
		}
		t.last = o
		if o.Spec.NodeName != "" {
			t.mark("spec.nodeName set", now)
		}
		if o.Status.Phase != "" {
			t.mark("phase "+string(o.Status.Phase), now)
		}
		for _, c := range o.Status.Conditions {
			if c.Status == corev1.ConditionTrue {
				t.mark("condition "+string(c.Type), now)
			}
		}
		for _, list := range []struct {
			prefix string
			st     []corev1.ContainerStatus
		}{{"init ", o.Status.InitContainerStatuses}, {"", o.Status.ContainerStatuses}} {
			for _, c := range list.st {
				switch {
				case c.State.Running != nil:
					t.mark("status "+list.prefix+c.Name+" running", now)
				case c.State.Terminated != nil:
					t.mark("status "+list.prefix+c.Name+" terminated", now)
				}
				if c.Ready {
					t.mark("status "+list.prefix+c.Name+" ready", now)
				}
			}
		}
		if !t.isReady {
			for _, c := range o.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					t.isReady = true
					close(t.ready)
				}
			}
		}
	}
}

func (t *track) mark(name string, at time.Time) {
	if _, ok := t.seen[name]; !ok {
		t.seen[name] = at
	}
}

// Create creates pod in the recorder's namespace, timing from just before
// the call.
func (r *Recorder) Create(ctx context.Context, pod *corev1.Pod) error {
	t := &track{seen: map[string]time.Time{}, ready: make(chan struct{})}
	r.mu.Lock()
	if _, dup := r.pods[pod.Name]; dup {
		r.mu.Unlock()
		return fmt.Errorf("pod %s is already recorded", pod.Name)
	}
	r.pods[pod.Name] = t
	t.start = time.Now()
	r.mu.Unlock()
	_, err := r.kube.CoreV1().Pods(r.ns).Create(ctx, pod, metav1.CreateOptions{})
	done := time.Now()
	if err != nil {
		return fmt.Errorf("creating pod %s: %w", pod.Name, err)
	}
	r.mu.Lock()
	t.mark(MarkCreated, done)
	r.mu.Unlock()
	return nil
}

// WaitReady waits until the watch has seen the pod Ready (the retry
// watchers resume a watch the server closed, from its last version).
func (r *Recorder) WaitReady(ctx context.Context, name string, timeout time.Duration) error {
	r.mu.Lock()
	t := r.pods[name]
	r.mu.Unlock()
	if t == nil {
		return fmt.Errorf("pod %s was not created by the recorder", name)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case <-t.ready:
		return nil
	case <-ctx.Done():
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	desc := "never seen"
	if t.last != nil {
		desc = "phase " + string(t.last.Status.Phase)
		for _, c := range append(t.last.Status.InitContainerStatuses, t.last.Status.ContainerStatuses...) {
			if w := c.State.Waiting; w != nil {
				desc += fmt.Sprintf("; %s waiting %s %s", c.Name, w.Reason, w.Message)
			}
		}
	}
	return fmt.Errorf("pod %s not Ready in %s (%s)", name, timeout, desc)
}

// Sample returns what was recorded of a pod: its marks, and the coarse
// create-to-Ready from the API's own timestamps.
func (r *Recorder) Sample(name string, kind Kind) Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Sample{Kind: kind, Pod: name, Marks: map[string]time.Duration{}, Coarse: map[string]time.Duration{}}
	t := r.pods[name]
	if t == nil {
		return s
	}
	for m, at := range t.seen {
		s.Marks[m] = at.Sub(t.start)
	}
	if p := t.last; p != nil {
		for _, c := range p.Status.Conditions {
			if c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
				s.Coarse["condition "+string(c.Type)+" time - creationTimestamp"] = c.LastTransitionTime.Sub(p.CreationTimestamp.Time)
			}
		}
	}
	return s
}
