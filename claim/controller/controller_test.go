package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
	"sandbox.io/injector/claim/controller"
	"sandbox.io/injector/internal/claimtest"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner/api"
	runnerclient "sandbox.io/injector/runner/client"
)

const bindTimeout = 60 * time.Second

func newClaim(ns, pool, token string, mutate ...func(*v1alpha1.SandboxClaim)) *v1alpha1.SandboxClaim {
	sbc := claim.NewClaim(claim.Request{Namespace: ns, Pool: pool}, token)
	for _, m := range mutate {
		m(sbc)
	}
	return sbc
}

// bindOneWarm makes a pool of one Ready warm pod on node-a in a new
// namespace and returns a claim of it once Bound (the test ends otherwise).
func bindOneWarm(t *testing.T, e *claimtest.Env, poolName, token string) *v1alpha1.SandboxClaim {
	t.Helper()
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, poolName, 1)
	e.WarmPod(p, "node-a")
	e.WaitPoolReady(p, 1)
	sbc := newClaim(ns, poolName, token)
	create(t, e, sbc)
	got := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimBound, v1alpha1.ClaimFailed)
	if got.Status.Phase != v1alpha1.ClaimBound {
		t.Fatalf("claim %s: %+v", got.Status.Phase, got.Status.Conditions)
	}
	return got
}

func create(t *testing.T, e *claimtest.Env, obj client.Object) {
	t.Helper()
	if err := e.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T: %v", obj, err)
	}
}

func TestBindWarmPod(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{})
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "python", 2)
	warm := map[string]*corev1.Pod{}
	for range 2 {
		pod := e.WarmPod(p, "node-a")
		warm[pod.Name] = pod
	}
	e.WaitPoolReady(p, 2)

	token := "claimant-token-0123456789abcdef"
	sbc := newClaim(ns, "python", token, func(c *v1alpha1.SandboxClaim) {
		c.Spec.Env = []v1alpha1.ClaimEnvVar{{Name: "SECRET_API_KEY", Value: "s3cret"}}
	})
	create(t, e, sbc)
	got := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimBound, v1alpha1.ClaimFailed)
	if got.Status.Phase != v1alpha1.ClaimBound {
		t.Fatalf("claim %s: %+v", got.Status.Phase, got.Status.Conditions)
	}
	st := got.Status
	if st.PodName == "" || st.NodeName != "node-a" || st.PodIP != "127.0.0.1" || st.RunnerPort == 0 || st.Origin != v1alpha1.OriginWarmPod || st.BoundAt == nil || st.ExpiresAt != nil {
		t.Errorf("status: %+v", st)
	}
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionBound); c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonBound {
		t.Errorf("Bound condition: %+v", c)
	}
	var pod corev1.Pod
	if err := e.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: st.PodName}, &pod); err != nil {
		t.Fatal(err)
	}
	if pool.State(&pod) != v1alpha1.StateClaimed || pool.ClaimOwner(&pod) != sbc.Name {
		t.Errorf("pod state %q, claim %q", pool.State(&pod), pool.ClaimOwner(&pod))
	}
	// The take changes no label and no annotation: a label change makes
	// NetworkPolicy implementations recompute the node's rules, and
	// either makes the kubelet re-sync the pod, once per claim.
	if was := warm[pod.Name]; was == nil || !maps.Equal(pod.Labels, was.Labels) || !maps.Equal(pod.Annotations, was.Annotations) {
		t.Errorf("the take changed the pod's labels %v or annotations %v", pod.Labels, pod.Annotations)
	}
	if ref := metav1.GetControllerOf(&pod); ref == nil || ref.UID != got.UID || len(pod.OwnerReferences) != 1 {
		t.Errorf("pod owners: %+v, want the claim alone (the garbage collector deletes a pod only when every owner is gone)", pod.OwnerReferences)
	}
	// The claimant's token opens the runner, with the claim's env.
	rc := runnerclient.New(fmt.Sprintf("http://127.0.0.1:%d", st.RunnerPort), token, nil)
	res, err := rc.Execute(t.Context(), api.ExecuteRequest{Shell: "echo $SECRET_API_KEY"})
	if err != nil || res.Stdout != "s3cret\n" {
		t.Fatalf("execute with the claimant's token: %+v, %v", res, err)
	}
	// The claim holds only the digest; another token is refused.
	bad := runnerclient.New(fmt.Sprintf("http://127.0.0.1:%d", st.RunnerPort), "not-the-token-0123456789", nil)
	if _, err := bad.Status(t.Context()); runnerclient.StatusCode(err) != http.StatusUnauthorized {
		t.Errorf("another token: %v, want 401", err)
	}
	// The pool's status counts it.
	testenv.Eventually(t, 30*time.Second, "pool status", func() error {
		var pl v1alpha1.SandboxPool
		if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(p), &pl); err != nil {
			return err
		}
		if pl.Status.Desired != 2 || pl.Status.Ready != 1 || pl.Status.Claimed != 1 || pl.Status.Warm != 1 {
			return fmt.Errorf("status %+v", pl.Status)
		}
		if c := meta.FindStatusCondition(pl.Status.Conditions, pool.ConditionPodSecurity); c == nil || c.Status == metav1.ConditionUnknown {
			return fmt.Errorf("no PodSecurity condition: %+v", pl.Status.Conditions)
		}
		return nil
	})
}

// TestRaceForWarmPods: 50 claims race for 20 warm pods; exactly 20 bind,
// each to a different pod, and the rest fall back to a cold pod or fail,
// as each asked.
func TestRaceForWarmPods(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{})
	ns := e.Namespace()
	for _, n := range []string{"node-a", "node-b"} {
		e.Node(n)
	}
	p := e.Pool(ns, "race", 10)
	for i := range 20 {
		e.WarmPod(p, []string{"node-a", "node-b"}[i%2])
	}
	e.WaitPoolReady(p, 20)
	var wg sync.WaitGroup
	names := make([]string, 50)
	for i := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sbc := newClaim(ns, "race", fmt.Sprintf("token-%02d-0123456789abcdef", i), func(c *v1alpha1.SandboxClaim) {
				if i%2 == 0 {
					c.Spec.ColdStart = v1alpha1.ColdStartNever
				}
			})
			if err := e.Client.Create(context.Background(), sbc); err != nil {
				t.Errorf("creating claim %d: %v", i, err)
				return
			}
			names[i] = sbc.Name
		}()
	}
	wg.Wait()
	pods := map[string]string{}
	bound, failed, cold := 0, 0, 0
	for i, name := range names {
		got := e.WaitPhase(ns, name, bindTimeout, v1alpha1.ClaimBound, v1alpha1.ClaimFailed, v1alpha1.ClaimPending)
		if got.Status.Phase == v1alpha1.ClaimPending && got.Status.Origin != v1alpha1.OriginColdPod {
			got = e.WaitPhase(ns, name, bindTimeout, v1alpha1.ClaimBound, v1alpha1.ClaimFailed)
		}
		switch got.Status.Phase {
		case v1alpha1.ClaimBound:
			bound++
			if other, dup := pods[got.Status.PodName]; dup {
				t.Errorf("pod %s bound to %s and %s", got.Status.PodName, other, name)
			}
			pods[got.Status.PodName] = name
		case v1alpha1.ClaimFailed:
			failed++
			c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBound)
			if i%2 != 0 || c == nil || c.Reason != v1alpha1.ReasonNoWarmPod {
				t.Errorf("claim %d (cold start %s) failed: %+v", i, got.Spec.ColdStart, c)
			}
		case v1alpha1.ClaimPending:
			cold++
			if i%2 == 0 {
				t.Errorf("claim %d forbids a cold start but waits for cold pod %s", i, got.Status.PodName)
			}
		}
	}
	if bound != 20 || failed+cold != 30 {
		t.Fatalf("bound %d, failed %d, cold %d; want 20 bound and 30 others", bound, failed, cold)
	}
	t.Logf("50 claims for 20 warm pods: %d bound, %d failed (no cold start), %d waiting for cold pods", bound, failed, cold)
}

func TestColdPodWhenNoneWarm(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{})
	ns := e.Namespace()
	e.Node("node-a")
	e.Pool(ns, "empty", 0)
	token := "cold-token-0123456789abcdef"
	sbc := newClaim(ns, "empty", token)
	create(t, e, sbc)
	got := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimPending)
	testenv.Eventually(t, bindTimeout, "a cold pod", func() error {
		if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(sbc), got); err != nil {
			return err
		}
		if got.Status.PodName == "" || got.Status.Origin != v1alpha1.OriginColdPod {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
	var pod corev1.Pod
	if err := e.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: got.Status.PodName}, &pod); err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(&pod); ref == nil || ref.UID != sbc.UID || pod.Labels[v1alpha1.LabelOrigin] != v1alpha1.OriginCold {
		t.Fatalf("cold pod owner %+v labels %v", ref, pod.Labels)
	}
	// Binding a cold pod once it is Ready is covered end to end, where the
	// webhook and a kubelet make it Ready (e2e TestClaimColdFallback).
}

func TestClaimLifetime(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{})
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "short", 1)
	e.WarmPod(p, "node-a")
	secs := int64(3)
	sbc := newClaim(ns, "short", "lifetime-token-0123456789abcdef", func(c *v1alpha1.SandboxClaim) { c.Spec.ActiveDeadlineSeconds = &secs })
	create(t, e, sbc)
	got := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimBound)
	if got.Status.ExpiresAt == nil || got.Status.ExpiresAt.Sub(got.Status.BoundAt.Time) != 3*time.Second {
		t.Fatalf("expiresAt %v, boundAt %v", got.Status.ExpiresAt, got.Status.BoundAt)
	}
	// Raise it: the expiry follows.
	patch := client.MergeFrom(got.DeepCopy())
	longer := int64(6)
	got.Spec.ActiveDeadlineSeconds = &longer
	if err := e.Client.Patch(context.Background(), got, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the extended expiry", func() error {
		if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(sbc), got); err != nil {
			return err
		}
		if got.Status.ExpiresAt == nil || got.Status.ExpiresAt.Sub(got.Status.BoundAt.Time) != 6*time.Second {
			return fmt.Errorf("expiresAt %v", got.Status.ExpiresAt)
		}
		return nil
	})
	expired := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimExpired)
	if c := meta.FindStatusCondition(expired.Status.Conditions, v1alpha1.ConditionBound); c == nil || c.Reason != v1alpha1.ReasonExpired {
		t.Errorf("condition %+v", c)
	}
	if time.Since(expired.Status.BoundAt.Time) < 6*time.Second {
		t.Errorf("expired %s after binding, before its extended lifetime", time.Since(expired.Status.BoundAt.Time))
	}
	var pod corev1.Pod
	err := e.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: expired.Status.PodName}, &pod)
	if err == nil && pod.DeletionTimestamp == nil {
		t.Errorf("pod %s of the expired claim is not being deleted", pod.Name)
	}
}

func TestClaimFailures(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{Controller: controller.Options{FinishedTTL: 2 * time.Second}})
	ns := e.Namespace()
	e.Node("node-a")
	e.Pool(ns, "empty", 0)

	missing := newClaim(ns, "no-such-pool", "token-missing-0123456789")
	create(t, e, missing)
	got := e.WaitPhase(ns, missing.Name, bindTimeout, v1alpha1.ClaimFailed)
	if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBound); c == nil || c.Reason != v1alpha1.ReasonPoolNotFound || !strings.Contains(c.Message, "no-such-pool") {
		t.Errorf("missing pool: %+v", c)
	}
	secret := newClaim(ns, "empty", "", func(c *v1alpha1.SandboxClaim) {
		c.Spec.Auth = v1alpha1.ClaimAuth{SecretRef: &v1alpha1.SecretReference{Name: "not-there"}}
	})
	create(t, e, secret)
	got = e.WaitPhase(ns, secret.Name, bindTimeout, v1alpha1.ClaimFailed)
	if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBound); c == nil || c.Reason != v1alpha1.ReasonSecretInvalid {
		t.Errorf("missing Secret: %+v", c)
	}
	if err := claim.ClaimError(got); err == nil || !strings.Contains(err.Error(), "not-there") {
		t.Errorf("client error: %v", err)
	}
	// Finished claims are deleted after the TTL.
	testenv.Eventually(t, 60*time.Second, "the finished claim deleted", func() error {
		err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(missing), &v1alpha1.SandboxClaim{})
		if err == nil {
			return fmt.Errorf("still there")
		}
		return client.IgnoreNotFound(err)
	})
}

// TestAttackDecoyPods: pods that carry a pool's labels but that the pool
// does not own, or that have no claim nonce, are never bound; the claim
// fails instead (no cold start) and its env reaches no one.
func TestAttackDecoyPods(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{})
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "target", 3)
	other := e.Pool(ns, "other", 0)

	decoy := func(mutate func(*corev1.Pod)) *corev1.Pod {
		pod := pool.WarmPod(p, "node-a")
		pod.Annotations[v1alpha1.AnnotationClaimNonce] = "00112233445566778899aabbccddeeff"
		mutate(pod)
		return e.RunPod(pod, "--insecure-loopback")
	}
	labelsOnly := decoy(func(pod *corev1.Pod) { pod.OwnerReferences = nil })
	decoy(func(pod *corev1.Pod) { pod.OwnerReferences[0].UID = other.UID })                 // another pool's UID
	decoy(func(pod *corev1.Pod) { delete(pod.Annotations, v1alpha1.AnnotationClaimNonce) }) // not injected as a pool pod
	notController := decoy(func(pod *corev1.Pod) { pod.OwnerReferences[0].Controller = nil })
	// No pool or claim controls these two: orphans, which the controller
	// deletes besides never binding them.
	waitDeleting(t, e, labelsOnly)
	waitDeleting(t, e, notController)

	sbc := newClaim(ns, "target", "victim-token-0123456789abcdef", func(c *v1alpha1.SandboxClaim) {
		c.Spec.ColdStart = v1alpha1.ColdStartNever
		c.Spec.Env = []v1alpha1.ClaimEnvVar{{Name: "SECRET_API_KEY", Value: "victim"}}
	})
	create(t, e, sbc)
	got := e.WaitPhase(ns, sbc.Name, bindTimeout, v1alpha1.ClaimBound, v1alpha1.ClaimFailed)
	if got.Status.Phase != v1alpha1.ClaimFailed {
		t.Fatalf("the claim was bound to decoy %s", got.Status.PodName)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBound); c == nil || c.Reason != v1alpha1.ReasonNoWarmPod {
		t.Errorf("condition %+v", c)
	}
	var pods corev1.PodList
	if err := e.Client.List(context.Background(), &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, pod := range pods.Items {
		if pool.ClaimOwner(&pod) != "" {
			t.Errorf("decoy %s was taken: %v", pod.Name, pod.OwnerReferences)
		}
	}
}

// TestLeaderFailover: the leader dies in the middle of a burst without
// releasing its lease; the standby takes over and every claim is bound,
// none twice.
func TestLeaderFailover(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{NoController: true})
	leaseNS := e.Namespace()
	ns := e.Namespace()
	e.Node("node-a")
	p := e.Pool(ns, "failover", 20)
	for range 20 {
		e.WarmPod(p, "node-a")
	}
	stopLeader := e.StartController(controller.Options{Registerer: nil}, leaseNS)
	// The first manager is the leader once it has bound a claim.
	first := newClaim(ns, "failover", "first-token-0123456789abcdef")
	create(t, e, first)
	e.WaitPhase(ns, first.Name, bindTimeout, v1alpha1.ClaimBound)
	e.StartController(controller.Options{Registerer: nil}, leaseNS)

	names := make([]string, 19)
	for i := range names {
		sbc := newClaim(ns, "failover", fmt.Sprintf("burst-token-%02d-0123456789", i), func(c *v1alpha1.SandboxClaim) {
			c.Spec.ColdStart = v1alpha1.ColdStartNever
		})
		create(t, e, sbc)
		names[i] = sbc.Name
		if i == 5 {
			stopLeader()
		}
	}
	pods := map[string]string{first.Name: first.Name}
	for _, name := range names {
		got := e.WaitPhase(ns, name, 2*bindTimeout, v1alpha1.ClaimBound, v1alpha1.ClaimFailed)
		if got.Status.Phase != v1alpha1.ClaimBound {
			t.Errorf("claim %s: %s %+v", name, got.Status.Phase, got.Status.Conditions)
			continue
		}
		if other, dup := pods[got.Status.PodName]; dup {
			t.Errorf("pod %s bound twice (%s, %s)", got.Status.PodName, other, name)
		}
		pods[got.Status.PodName] = name
	}
}

// TestMetricsCountClaims: the controller's Prometheus metrics count bound
// claims.
func TestMetricsCountClaims(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{})
	bindOneWarm(t, e, "m", "metrics-token-0123456789abcdef")
	mfs, err := e.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "sandbox_claims_total" && m.GetCounter().GetValue() > 0 {
				fmt.Fprintf(&b, "%v=%v ", m.GetLabel(), m.GetCounter().GetValue())
			}
		}
	}
	if !strings.Contains(b.String(), `value:"warm"`) || !strings.Contains(b.String(), `value:"bound"`) {
		t.Errorf("sandbox_claims_total: %s", b.String())
	}
}

// TestBoundLogSaysWhereTheTimeWent: the "claim bound" log line of a warm
// claim gives its binding's time and, within it, the pod's update, the
// runner's POST /claim and the status write, so that a slow claim in an
// operator's logs says which of its steps was slow.
func TestBoundLogSaysWhereTheTimeWent(t *testing.T) {
	var logs testenv.SyncBuffer
	e := claimtest.Start(t, claimtest.Options{Controller: controller.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}})
	sbc := bindOneWarm(t, e, "logged", "logged-token-0123456789abcdef")
	var line struct {
		Msg, Claim                 string
		Took, Take, Runner, Status time.Duration
	}
	found := false
	for _, l := range strings.Split(logs.String(), "\n") {
		if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "claim bound" && line.Claim == sbc.Name {
			found = true
			break
		}
	}
	if !found {
		t.Fatalf("no \"claim bound\" line for claim %s in the controller's log:\n%s", sbc.Name, logs.String())
	}
	if line.Take <= 0 || line.Runner <= 0 || line.Status <= 0 {
		t.Errorf("claim bound with take %s, runner %s, status %s: want each step's time", line.Take, line.Runner, line.Status)
	}
	if steps := line.Take + line.Runner + line.Status; line.Took < steps {
		t.Errorf("claim bound in %s, less than its steps' %s", line.Took, steps)
	}
}

// TestColdPodRetriedWhileWebhookDown: a cold pod whose creation fails only
// because a webhook the API server must call (failing closed) is down, as
// during a rollout, leaves the claim Pending saying so; once the webhook
// answers again the claim gets its cold pod instead of failing for good.
func TestColdPodRetriedWhileWebhookDown(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{})
	ns := e.Namespace()
	e.Node("node-a")
	e.Pool(ns, "empty", 0)
	down := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "down-" + ns},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "down.sandbox.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:1/validate")},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To(int32(2)),
		}},
	}
	create(t, e, down)
	sbc := newClaim(ns, "empty", "cold-token-0123456789abcdef")
	create(t, e, sbc)
	var got v1alpha1.SandboxClaim
	testenv.Eventually(t, bindTimeout, "the claim waiting for the webhook", func() error {
		if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(sbc), &got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionBound)
		if got.Status.Phase != v1alpha1.ClaimPending || c == nil || c.Reason != v1alpha1.ReasonWaitingForPod || !strings.Contains(c.Message, "retrying") {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
	// Retries every 2 s write the status once: it says the same each time.
	waiting := got.ResourceVersion
	time.Sleep(5 * time.Second)
	if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(sbc), &got); err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion != waiting {
		t.Errorf("the waiting claim was rewritten while the webhook stayed down: %+v", got.Status.Conditions)
	}
	if err := e.Client.Delete(context.Background(), down); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, bindTimeout, "a cold pod once the webhook is gone", func() error {
		if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(sbc), &got); err != nil {
			return err
		}
		if got.Status.Phase != v1alpha1.ClaimPending || got.Status.PodName == "" || got.Status.Origin != v1alpha1.OriginColdPod {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
}

// TestRelabelOnTake: with RelabelOnTake (the chart's default, for node
// agents of earlier releases) the take also labels the pod claimed; the
// pod is claimed either way.
func TestRelabelOnTake(t *testing.T) {
	e := claimtest.Start(t, claimtest.Options{Controller: controller.Options{RelabelOnTake: true}})
	got := bindOneWarm(t, e, "python", "claimant-token-0123456789abcdef")
	var pod corev1.Pod
	if err := e.Client.Get(context.Background(), client.ObjectKey{Namespace: got.Namespace, Name: got.Status.PodName}, &pod); err != nil {
		t.Fatal(err)
	}
	if pod.Labels[v1alpha1.LabelState] != v1alpha1.StateClaimed || pod.Labels[v1alpha1.LabelOrigin] != v1alpha1.OriginWarm || pool.State(&pod) != v1alpha1.StateClaimed {
		t.Errorf("pod labels %v, state %q; want claimed and origin warm", pod.Labels, pool.State(&pod))
	}
}
