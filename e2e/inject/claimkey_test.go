package inject

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim/controller"
	"sandbox.io/injector/internal/claimkey"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/pool"
)

// TestClaimKeyRotation rotates the claim key on the local cluster as the
// README says (kubectl patch of the Secret: a new key, the old one as
// previous) with two webhook replicas: both switch without a restart (each
// one's sandbox_claim_keys gauge names the new key), the warm pods made
// before are still claimed and run commands, and every pool pod made after
// carries a verifier of the new key and is claimed too. Then the key is
// rotated again with no previous (one that may have leaked): the warm pods
// of the dropped key are deleted by the leader after claims.unheldKeyGrace
// and replaced under the newest key, whose pods are claimed.
func TestClaimKeyRotation(t *testing.T) {
	x := requireE2E(t)
	t.Cleanup(func() {
		x.scaleWebhook(context.Background(), t, 1)
		if err := x.install(); err != nil {
			t.Errorf("going back to the chart without the agent: %v", err)
		}
	})
	// A short grace, so that the warm pods of a key dropped at the end are
	// replaced within the test.
	x.installPoolAgent(t, "--set", "claims.unheldKeyGrace=15s")
	x.agentPodReady(t, "")
	x.scaleWebhook(t.Context(), t, 2)
	replicas := x.webhookPods(t)
	if len(replicas) != 2 {
		t.Fatalf("%d webhook pods, want 2", len(replicas))
	}

	ns := x.namespace(t, "claim-key", nil)
	p := x.createPool(t, ns, "rotate", 2)
	before := x.waitWarmReady(t, p, 2, "")

	secrets := x.kube.CoreV1().Secrets(releaseNS)
	name := release + "-claim-key"
	s, err := secrets.Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldKey := claimkey.Key(s.Data[claimkey.SecretKey])
	for _, pod := range before {
		if !injectedUnder(&pod, oldKey) {
			t.Fatalf("warm pod %s before the rotation: its verifier is not of the Secret's key", pod.Name)
		}
	}
	newKey, err := claimkey.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	x.rotateClaimKey(t, replicas, name, newKey, oldKey)

	// The warm pods made before: claimed and running commands. Each claim
	// makes the agent create a pod after the rotation, under the new key.
	claimed := map[string]bool{}
	claim := func() string {
		t.Helper()
		out := x.mustSandboxctl(t, "claim", "rotate", "-n", ns, "--no-cold")
		c, pod := field(out, "claim"), field(out, "pod")
		if field(out, "origin") != string(v1alpha1.OriginWarmPod) {
			t.Fatalf("claim %s: origin %q, want Warm", c, field(out, "origin"))
		}
		if got := x.mustSandboxctl(t, "exec", "-n", ns, c, "--", "echo", "rotated"); strings.TrimSpace(got) != "rotated" {
			t.Fatalf("exec in claim %s after the rotation: %q", c, got)
		}
		claimed[pod] = true
		return pod
	}
	for range before {
		claim()
	}
	for _, pod := range before {
		if !claimed[pod.Name] {
			t.Errorf("warm pod %s made before the rotation was not claimed (claimed %v)", pod.Name, claimed)
		}
	}
	after := x.waitWarmReady(t, p, 2, "")
	for _, pod := range after {
		if !injectedUnder(&pod, newKey) {
			t.Errorf("warm pod %s made after the rotation: its verifier is not of the new key", pod.Name)
		}
	}
	for range after {
		claim()
	}
	for _, pod := range after {
		if !claimed[pod.Name] {
			t.Errorf("warm pod %s made after the rotation was not claimed (claimed %v)", pod.Name, claimed)
		}
	}

	// A key that may have leaked is rotated away with no previous: its
	// warm pods are never handed out, the leader deletes them after
	// claims.unheldKeyGrace, and the agent makes new ones under the newest
	// key, which are claimed.
	leaked := x.waitWarmReady(t, p, 2, "")
	newest, err := claimkey.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	x.rotateClaimKey(t, replicas, name, newest, nil)
	droppedAt := time.Now()
	var refilled []corev1.Pod
	testenv.Eventually(t, 3*time.Minute, "the warm pods of the dropped key replaced by pods of the newest key", func() error {
		pods, err := x.kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: v1alpha1.LabelPool + "=" + p.Name + "," + v1alpha1.LabelState + "=" + v1alpha1.StateWarm})
		if err != nil {
			return err
		}
		refilled = refilled[:0]
		for _, pod := range pods.Items {
			if pool.State(&pod) != v1alpha1.StateWarm {
				continue // claimed since
			}
			if pod.DeletionTimestamp == nil && slices.ContainsFunc(leaked, func(l corev1.Pod) bool { return l.UID == pod.UID }) {
				return fmt.Errorf("warm pod %s of the dropped key is still there", pod.Name)
			}
			if pod.DeletionTimestamp == nil && injectedUnder(&pod, newest) && isReady(&pod) {
				refilled = append(refilled, pod)
			}
		}
		if len(refilled) < 2 {
			return fmt.Errorf("%d Ready warm pods of the newest key", len(refilled))
		}
		return nil
	})
	t.Logf("the dropped key's warm pods replaced %s after the rotation", time.Since(droppedAt).Round(100*time.Millisecond))
	testenv.Eventually(t, 30*time.Second, "an Event on the pool per deleted pod", func() error {
		list, err := x.kube.EventsV1().Events(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, pod := range leaked {
			if !slices.ContainsFunc(list.Items, func(ev eventsv1.Event) bool {
				return ev.Reason == controller.ReasonUnheldKeyPodDeleted && ev.Regarding.Name == p.Name && ev.Related != nil && ev.Related.Name == pod.Name
			}) {
				return fmt.Errorf("no %s Event on pool %s for pod %s (%d Events in the namespace)", controller.ReasonUnheldKeyPodDeleted, p.Name, pod.Name, len(list.Items))
			}
		}
		return nil
	})
	for range refilled {
		pod := claim()
		if !slices.ContainsFunc(refilled, func(r corev1.Pod) bool { return r.Name == pod }) {
			t.Errorf("claimed %s, not one of the newest key's warm pods", pod)
		}
	}
}

// rotateClaimKey patches the release's claim key Secret name to hold
// current, and previous (nil: none, dropped), as the README's kubectl
// patch does, then waits until every one of replicas holds the keys by
// its sandbox_claim_keys gauge, and checks that none restarted.
func (x *env) rotateClaimKey(t *testing.T, replicas []corev1.Pod, name string, current, previous claimkey.Key) {
	t.Helper()
	data := map[string]any{claimkey.SecretKey: base64.StdEncoding.EncodeToString(current), claimkey.SecretKeyPrevious: nil}
	want := []string{fmt.Sprintf(`sandbox_claim_keys{id="%s",role="current"} 1`, current.ID())}
	if previous != nil {
		data[claimkey.SecretKeyPrevious] = base64.StdEncoding.EncodeToString(previous)
		want = append(want, fmt.Sprintf(`sandbox_claim_keys{id="%s",role="previous"} 1`, previous.ID()))
	}
	patch, _ := json.Marshal(map[string]any{"data": data})
	if _, err := x.kube.CoreV1().Secrets(releaseNS).Patch(t.Context(), name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("rotating the claim key: %v", err)
	}
	rotatedAt := time.Now()
	for _, r := range replicas {
		testenv.Eventually(t, 30*time.Second, "webhook replica "+r.Name+" holding the rotated keys", func() error {
			raw, err := x.kube.CoreV1().Pods(releaseNS).ProxyGet("http", r.Name, "8080", "/metrics", nil).DoRaw(t.Context())
			if err != nil {
				return err
			}
			for _, line := range want {
				if !strings.Contains(string(raw), line) {
					return fmt.Errorf("no %q in its metrics:\n%s", line, grepLines(string(raw), "sandbox_claim_keys"))
				}
			}
			if previous == nil && strings.Contains(string(raw), `role="previous"} 1`) {
				return fmt.Errorf("still a previous key in its metrics:\n%s", grepLines(string(raw), "sandbox_claim_keys"))
			}
			return nil
		})
	}
	t.Logf("both replicas hold the rotated keys %s after the patch", time.Since(rotatedAt).Round(100*time.Millisecond))
	for _, now := range x.webhookPods(t) {
		if !samePod(now, replicas) {
			t.Errorf("webhook pod %s (restarts %d) is not one of those before the rotation: the rotation restarted a replica", now.Name, containerRestarts(&now))
		}
	}
}

// injectedUnder reports whether pod's runner holds the claim verifier of
// key for its nonce.
func injectedUnder(pod *corev1.Pod, key claimkey.Key) bool {
	nonce := pod.Annotations[v1alpha1.AnnotationClaimNonce]
	return nonce != "" && pool.ClaimVerifier(pod) == key.Verifier(pod.Namespace, nonce)
}

// webhookPods are the release's running webhook pods.
func (x *env) webhookPods(t *testing.T) []corev1.Pod {
	t.Helper()
	list, err := x.kube.CoreV1().Pods(releaseNS).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=webhook"})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out = append(out, p)
		}
	}
	return out
}

// samePod reports whether pod is one of pods, with no more restarts.
func samePod(pod corev1.Pod, pods []corev1.Pod) bool {
	for _, p := range pods {
		if p.UID == pod.UID && containerRestarts(&p) == containerRestarts(&pod) {
			return true
		}
	}
	return false
}
