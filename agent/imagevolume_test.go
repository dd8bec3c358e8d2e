package agent

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/testcri"
	"sandbox.io/injector/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// envtest's and client-go's long-lived helpers.
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}

func TestSupportsImageVolumes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, version string
		want          bool
	}{
		{"containerd", "v2.4.2", true},
		{"containerd", "2.1.0", true},
		{"containerd", "v2.1.0-rc.1", true},
		{"containerd", "v2.0.5", false},
		{"containerd", "1.6.9", false},
		{"containerd", "v3.0.0", true},
		{"cri-o", "1.31.0", true},
		{"cri-o", "1.30.4", false},
		{"docker", "28.2.2", false},
		{"containerd", "garbage", false},
		{"containerd", "", false},
	}
	for _, tc := range tests {
		if got := SupportsImageVolumes(tc.name, tc.version); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.name, tc.version, got, tc.want)
		}
	}
}

// TestImageVolumeLabeler asks a real containerd over the CRI and labels a
// Node of a real API server.
func TestImageVolumeLabeler(t *testing.T) {
	cri := testcri.Start(t)
	cfg := testenv.Start(t, &envtest.Environment{})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}
	if err := c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	l := &ImageVolumeLabeler{NodeName: "node-a", Runtime: cri.Runtime, Client: c, Recorder: testenv.Recorder(t, cfg, "sandbox-agent")}

	label := func() string {
		t.Helper()
		var n corev1.Node
		if err := c.Get(ctx, types.NamespacedName{Name: "node-a"}, &n); err != nil {
			t.Fatal(err)
		}
		return n.Labels[v1alpha1.LabelImageVolume]
	}
	events := func() []corev1.Event {
		t.Helper()
		var list corev1.EventList
		if err := c.List(ctx, &list, client.InNamespace(metav1.NamespaceDefault)); err != nil {
			t.Fatal(err)
		}
		var out []corev1.Event
		for _, e := range list.Items {
			if e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == "node-a" && e.Reason == "ImageVolumeSupport" {
				out = append(out, e)
			}
		}
		return out
	}

	changed, err := l.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// bin/containerd is v2.4.2: it supports image volumes.
	if !changed || label() != "true" {
		t.Fatalf("after the first sync: changed %v, label %q; want true", changed, label())
	}
	// The recorder writes asynchronously.
	testenv.Eventually(t, 30*time.Second, "an event saying the runtime supports image volumes", func() error {
		if ev := events(); len(ev) != 1 || !strings.Contains(ev[0].Message, "supports image volumes") {
			return fmt.Errorf("events %+v", ev)
		}
		return nil
	})

	// Nothing to do: no write, no new Event (nor a repeat of the first,
	// which would make it a series: checked below).
	if changed, err := l.Sync(ctx); err != nil || changed {
		t.Fatalf("second sync: changed %v, err %v; want no change", changed, err)
	}

	// A wrong label (set by hand, or left from an older runtime) is put right.
	var n corev1.Node
	if err := c.Get(ctx, types.NamespacedName{Name: "node-a"}, &n); err != nil {
		t.Fatal(err)
	}
	n.Labels[v1alpha1.LabelImageVolume] = "false"
	if err := c.Update(ctx, &n); err != nil {
		t.Fatal(err)
	}
	if changed, err := l.Sync(ctx); err != nil || !changed || label() != "true" {
		t.Fatalf("after a wrong label: changed %v, err %v, label %q", changed, err, label())
	}
	testenv.Eventually(t, 30*time.Second, "a second event saying what the label was", func() error {
		if ev := events(); len(ev) != 2 || !strings.Contains(ev[1].Message+ev[0].Message, "(was false)") {
			return fmt.Errorf("events %+v", ev)
		}
		return nil
	})
	for _, e := range events() {
		if e.Series != nil {
			t.Errorf("event %q repeated %d times, want once", e.Message, e.Series.Count)
		}
	}
}

func TestImageVolumeLabelerNeedsItsParts(t *testing.T) {
	t.Parallel()
	if _, err := (&ImageVolumeLabeler{}).Sync(t.Context()); !errors.Is(err, ErrIncomplete) {
		t.Errorf("err = %v, want ErrIncomplete", err)
	}
}
