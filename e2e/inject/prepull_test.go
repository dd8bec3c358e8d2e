package inject

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/ociimage"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/internal/testregistry"
)

// clusterCRI connects to the cluster's containerd (the node is this
// machine) and returns its CRI image service.
func clusterCRI(t *testing.T) runtimeapi.ImageServiceClient {
	t.Helper()
	socket := criSocket()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return runtimeapi.NewImageServiceClient(conn)
}

// pushTestImage pushes a small random image, absent from the node, to the
// local registry.
func (x *env) pushTestImage(t *testing.T, repoTag string) string {
	t.Helper()
	img := testregistry.RandomImage(t, 1024, 1)
	ref := x.registry + "/" + repoTag
	r, err := ociimage.ParseReference(ref, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ociimage.Push(t.Context(), img, r, nil); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref
}

// TestPrePull installs the agent with a pre-pull list: its images (and the
// runner image) appear on the node, as the node's own CRI says; a changed
// list is pulled by the same agent pod, not restarted; an image removed by
// hand through the CRI comes back; the node carries the summary annotation
// and ImagePulled Events. The chart goes back to its usual values at the
// end.
func TestPrePull(t *testing.T) {
	x := requireE2E(t)
	images := clusterCRI(t)
	t.Cleanup(func() {
		if err := x.install(); err != nil {
			t.Errorf("going back to the chart without the agent: %v", err)
		}
	})
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	one := x.pushTestImage(t, "prepull-e2e/one:"+run)
	two := x.pushTestImage(t, "prepull-e2e/two:"+run)
	three := x.pushTestImage(t, "prepull-e2e/three:"+run)
	runnerImage := x.registry + "/sandbox-runner:" + x.tag

	present := func(ref string) bool {
		t.Helper()
		resp, err := images.ImageStatus(t.Context(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil {
			t.Fatalf("CRI ImageStatus %s: %v", ref, err)
		}
		return resp.GetImage() != nil
	}
	node := x.soleNode(t)
	waitPresent := func(what string, refs ...string) {
		t.Helper()
		testenv.Eventually(t, 2*time.Minute, what, func() error {
			for _, r := range refs {
				if !present(r) {
					// The agent's own account, for a failure report.
					var said string
					if n, err := x.kube.CoreV1().Nodes().Get(t.Context(), node, metav1.GetOptions{}); err == nil {
						said = n.Annotations[v1alpha1.AnnotationPrePull]
					}
					return fmt.Errorf("%s is not on the node (node annotation %s=%q)", r, v1alpha1.AnnotationPrePull, said)
				}
			}
			return nil
		})
	}
	install := func(list ...string) {
		t.Helper()
		x.installAgent(t, "--set", "agent.prepull.interval=2s", "--set", "agent.logLevel=debug",
			"--set-json", `agent.prepull.images=["`+strings.Join(list, `","`)+`"]`)
	}
	agentPod := func() corev1.Pod {
		t.Helper()
		pods, err := x.kube.CoreV1().Pods(releaseNS).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=agent"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 1 {
			t.Fatalf("%d agent pods, want 1 on the single node", len(pods.Items))
		}
		return pods.Items[0]
	}
	for _, r := range []string{one, two, three} {
		if present(r) {
			t.Fatalf("%s is on the node before the test", r)
		}
	}
	install(one, two)
	waitPresent("the list and the runner image on the node", one, two, runnerImage)
	if present(three) {
		t.Errorf("%s, not in the list, was pulled", three)
	}
	before := agentPod()

	// A changed list, through the chart: the ConfigMap changes, the agent
	// pod does not.
	install(one, three)
	waitPresent("the changed list's new image on the node", three)
	after := agentPod()
	if after.UID != before.UID || containerRestarts(&after) != 0 {
		t.Errorf("agent pod %s (restarts %d) became %s (restarts %d); want the same pod, never restarted",
			before.UID, containerRestarts(&before), after.UID, containerRestarts(&after))
	}

	// Removed by hand through the CRI: pulled again. The agent looks every
	// 2 s, so the image may be back before the test can see it gone: the
	// second ImagePulled event below is what proves the pull back.
	if _, err := images.RemoveImage(t.Context(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: three}}); err != nil {
		t.Fatal(err)
	}
	waitPresent("the removed image back on the node", three)

	testenv.Eventually(t, time.Minute, "the node's pre-pull annotation", func() error {
		n, err := x.kube.CoreV1().Nodes().Get(t.Context(), node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		// One, three and the runner, plus the images of warm pools that
		// other tests' namespaces may still hold while they terminate: all
		// present.
		a := n.Annotations[v1alpha1.AnnotationPrePull]
		var have, want int
		if _, err := fmt.Sscanf(a, "present %d/%d", &have, &want); err != nil || have != want || want < 3 {
			return fmt.Errorf("annotation %s=%q, want every desired image present, at least 3 (one, three, the runner)", v1alpha1.AnnotationPrePull, a)
		}
		return nil
	})
	// The agent's recorder writes asynchronously, and counts an Event that
	// repeats within minutes (the pull back) in the first one's series.
	testenv.Eventually(t, time.Minute, "two ImagePulled events for "+three+" (the list change, the pull back)", func() error {
		events, err := x.kube.CoreV1().Events(metav1.NamespaceDefault).List(t.Context(), metav1.ListOptions{
			FieldSelector: "involvedObject.name=" + node + ",reason=ImagePulled"})
		if err != nil {
			return err
		}
		pulledThree := 0
		var seen []string
		for _, ev := range events.Items {
			if strings.Contains(ev.Message, three) {
				n := 1
				if ev.Series != nil {
					n = int(ev.Series.Count)
				}
				pulledThree += n
				seen = append(seen, fmt.Sprintf("%s (%d times)", ev.Message, n))
			}
		}
		if pulledThree < 2 {
			return fmt.Errorf("%d ImagePulled events for %s: %q", pulledThree, three, seen)
		}
		return nil
	})
	if a := agentPod(); a.UID != before.UID || containerRestarts(&a) != 0 {
		t.Errorf("the agent pod was replaced or restarted during the test")
	}

	// The puller's and the loop's metrics, on the agent's metrics port
	// (through the API server's pod proxy).
	raw, err := x.kube.CoreV1().Pods(releaseNS).ProxyGet("http", before.Name, "8080", "/metrics", nil).DoRaw(t.Context())
	if err != nil {
		t.Fatalf("reading the agent's metrics: %v", err)
	}
	// At least one, three and the runner desired, all present (warm pools
	// of other tests' terminating namespaces may add their image).
	var desired, nPresent int
	for _, line := range strings.Split(string(raw), "\n") {
		// Lines that are not these metrics fail to scan and change nothing.
		_, _ = fmt.Sscanf(line, "sandbox_prepuller_images_desired %d", &desired)
		_, _ = fmt.Sscanf(line, "sandbox_prepuller_images_present %d", &nPresent)
	}
	if desired < 3 || nPresent != desired {
		t.Errorf("the agent's metrics say %d images desired and %d present, want at least 3, all present", desired, nPresent)
	}
	for _, want := range []string{
		`sandbox_prepuller_pulls_total{result="success"}`, "sandbox_prepuller_pulled_bytes_total", `sandbox_agent_prepull_syncs_total{result="ok"}`,
		`sandbox_agent_prepull_events_total{reason="ImagePulled"}`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the agent's metrics lack %s", want)
		}
	}
}
