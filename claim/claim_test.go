package claim_test

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner"
	"sandbox.io/injector/runner/api"
	runnerclient "sandbox.io/injector/runner/client"
	"sandbox.io/injector/webhook"
)

// poolToken is the token every warm runner starts with (the pool's).
const poolToken = "pool-token-0123456789abcdef"

// fixture is one real API server (envtest) shared by the subtests, each in
// its own namespace, with the real admission webhook injecting the pods of
// namespaces labelled webhookLabel; the runner it injects listens on
// coldPort, which only the cold-fallback test serves.
type fixture struct {
	cfg      *rest.Config
	kube     kubernetes.Interface
	c        client.Client
	coldLn   net.Listener
	coldPort int32
}

const webhookLabel = "claim-test/webhook"

func startFixture(t *testing.T) *fixture {
	t.Helper()
	cfg, c := testenv.StartWithCRDs(t)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{cfg: cfg, kube: kube, c: c}

	// The cold pod's runner port: reserved now, served by the cold test.
	f.coldLn, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.coldLn.Close() })
	f.coldPort = int32(f.coldLn.Addr().(*net.TCPAddr).Port)

	h, err := webhook.NewHandler(webhook.Config{
		RunnerImage: "runner.test/sandbox-runner:1",
		RunnerPort:  f.coldPort,
		Method:      v1alpha1.MethodCopy,
	}, webhook.HandlerOptions{Namespaces: c, APIReader: c})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(&admission.Webhook{Handler: h})
	t.Cleanup(hs.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})
	url := hs.URL + webhook.Path
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "claim-test"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "pods.claim-test.sandbox.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{webhookLabel: "on"}},
			SideEffects:             &none,
			FailurePolicy:           &fail,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	if err := c.Create(t.Context(), mwc); err != nil {
		t.Fatal(err)
	}
	// The API server picks the configuration up shortly after: wait until
	// a dry-run pod comes back injected.
	ns := f.namespace(t, "warmup", true)
	testenv.Eventually(t, 30*time.Second, "the API server to call the webhook", func() error {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns, Annotations: map[string]string{v1alpha1.AnnotationInject: v1alpha1.InjectTrue}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sleep", "1d"}}}},
		}
		if err := c.Create(t.Context(), pod, client.DryRunAll); err != nil {
			return err
		}
		if pod.Annotations[v1alpha1.AnnotationStatus] == "" {
			return errors.New("pod not injected yet")
		}
		return nil
	})
	return f
}

func (f *fixture) namespace(t *testing.T, prefix string, webhookOn bool) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if webhookOn {
		ns.Labels = map[string]string{webhookLabel: "on"}
	}
	if err := f.c.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// newPool creates the pool token Secret and a pool in a new namespace.
func (f *fixture) newPool(t *testing.T, name string, webhookOn bool) *v1alpha1.SandboxPool {
	t.Helper()
	ns := f.namespace(t, name, webhookOn)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: claim.DefaultTokenSecret, Namespace: ns},
		Data:       map[string][]byte{v1alpha1.TokenSecretKey: []byte(poolToken + "\n")},
	}
	if err := f.c.Create(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	p := &v1alpha1.SandboxPool{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.SandboxPoolSpec{Template: v1alpha1.SandboxTemplate{
			Image: "busybox", Command: []string{"sleep", "1d"},
		}},
	}
	if err := f.c.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// startRunner serves a real runner, holding the pool token, on loopback
// (on ln when given), and returns its port.
func startRunner(t *testing.T, ln net.Listener) int32 {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(poolToken), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := runner.New(runner.Config{TokenFile: tokenFile, Workdir: filepath.Join(dir, "work")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	hs := httptest.NewUnstartedServer(srv)
	if ln != nil {
		hs.Listener.Close()
		hs.Listener = ln
	}
	hs.Start()
	t.Cleanup(hs.Close)
	return int32(hs.Listener.Addr().(*net.TCPAddr).Port)
}

// deadPort is a loopback port nobody listens on.
func deadPort(t *testing.T) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	return port
}

// warmPod creates a warm pod of p on node whose runner is 127.0.0.1:port,
// Running and Ready as a kubelet would report it (pods never run in
// envtest; the namespace has no webhook, so the port is added here).
func (f *fixture) warmPod(t *testing.T, p *v1alpha1.SandboxPool, node string, port int32) *corev1.Pod {
	t.Helper()
	pod := pool.WarmPod(p, node)
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: claim.RunnerPortName, ContainerPort: port}}
	created, err := f.kube.CoreV1().Pods(p.Namespace).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return f.markReady(t, created)
}

func (f *fixture) markReady(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = "127.0.0.1"
	pod.Status.PodIPs = []corev1.PodIP{{IP: "127.0.0.1"}}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	got, err := f.kube.CoreV1().Pods(pod.Namespace).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (f *fixture) claimer(t *testing.T, reg prometheus.Registerer) *claim.Claimer {
	t.Helper()
	cl, err := claim.New(f.cfg, claim.Config{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func runnerAt(port int32, token string) *runnerclient.Client {
	return runnerclient.New("http://127.0.0.1:"+strconv.Itoa(int(port)), token, nil)
}

func execute(t *testing.T, rc *runnerclient.Client, shell string) (string, error) {
	t.Helper()
	res, err := rc.Execute(t.Context(), api.ExecuteRequest{Shell: shell})
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("%q exited %d: %s", shell, res.ExitCode, res.Stderr)
	}
	return res.Stdout, nil
}

func counter(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	t.Fatalf("metric %s{result=%q} not found", name, result)
	return 0
}

// TestClaim runs the claim protocol against a real API server and real
// runners on loopback.
func TestClaim(t *testing.T) {
	f := startFixture(t)
	t.Run("race", func(t *testing.T) { t.Parallel(); testRace(t, f) })
	t.Run("fresh token, env, open, copy, release", func(t *testing.T) { t.Parallel(); testFreshToken(t, f) })
	t.Run("runner not answering is skipped", func(t *testing.T) { t.Parallel(); testDeadRunner(t, f) })
	t.Run("waits for a warm pod within the grace period", func(t *testing.T) { t.Parallel(); testWaitsForWarm(t, f) })
	t.Run("cold fallback after the grace period", func(t *testing.T) { t.Parallel(); testCold(t, f) })
	t.Run("a missing pool token Secret costs no pod", func(t *testing.T) { t.Parallel(); testMissingTokenSecret(t, f) })
	t.Run("a runner already claimed is released and the next pod taken", func(t *testing.T) { t.Parallel(); testRunnerAlreadyClaimed(t, f) })
}

// testMissingTokenSecret: without the pool token Secret the claim fails,
// naming the Secret, before it takes a pod: the pod stays warm for a claim
// once the Secret exists.
func testMissingTokenSecret(t *testing.T, f *fixture) {
	p := f.newPool(t, "nosecret", false)
	if err := f.kube.CoreV1().Secrets(p.Namespace).Delete(t.Context(), claim.DefaultTokenSecret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := f.warmPod(t, p, "node-a", startRunner(t, nil))
	cl := f.claimer(t, nil)
	_, err := cl.Claim(t.Context(), p.Namespace, p.Name, claim.Options{Grace: -1, NoCold: true})
	if err == nil || !strings.Contains(err.Error(), "Secret "+claim.DefaultTokenSecret) {
		t.Fatalf("claim without the token Secret: %v, want an error naming Secret %s", err, claim.DefaultTokenSecret)
	}
	got, err := f.kube.CoreV1().Pods(p.Namespace).Get(t.Context(), pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels[v1alpha1.LabelState] != v1alpha1.StateWarm {
		t.Fatalf("the failed claim left the pod %q, want it warm", got.Labels[v1alpha1.LabelState])
	}
	if _, err := f.kube.CoreV1().Secrets(p.Namespace).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: claim.DefaultTokenSecret},
		Data:       map[string][]byte{v1alpha1.TokenSecretKey: []byte(poolToken)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sb, err := cl.Claim(t.Context(), p.Namespace, p.Name, claim.Options{Grace: -1, NoCold: true})
	if err != nil || sb.Pod != pod.Name {
		t.Fatalf("claim once the Secret exists: %+v, %v; want pod %s", sb, err, pod.Name)
	}
}

// testRunnerAlreadyClaimed: a warm-labelled pod whose runner was claimed
// already (409 on /claim) is a sandbox nobody can hand out: the claim
// deletes it and goes on to the next candidate.
func testRunnerAlreadyClaimed(t *testing.T, f *fixture) {
	p := f.newPool(t, "stale", false)
	port := startRunner(t, nil)
	if _, err := runnerAt(port, poolToken).Claim(t.Context(), api.ClaimRequest{Claimant: "earlier", Token: "earlier-token-0123456789"}); err != nil {
		t.Fatal(err)
	}
	stale := f.warmPod(t, p, "node-a", port)
	cl := f.claimer(t, nil)
	_, err := cl.Claim(t.Context(), p.Namespace, p.Name, claim.Options{Grace: -1, NoCold: true})
	if !errors.Is(err, claim.ErrNoSandbox) {
		t.Fatalf("claim of the only, already claimed, runner: %v, want ErrNoSandbox", err)
	}
	got, err := f.kube.CoreV1().Pods(p.Namespace).Get(t.Context(), stale.Name, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) && (err != nil || got.DeletionTimestamp == nil) {
		t.Errorf("the pod whose runner refused the claim: err %v, want it deleted", err)
	}
	live := f.warmPod(t, p, "node-a", startRunner(t, nil))
	sb, err := cl.Claim(t.Context(), p.Namespace, p.Name, claim.Options{Grace: -1, NoCold: true})
	if err != nil || sb.Pod != live.Name {
		t.Fatalf("claim with a good pod next: %+v, %v; want pod %s", sb, err, live.Name)
	}
}

// testRace: 20 claimers race for 6 warm pods on two nodes. Exactly one
// claimer wins each pod, no pod is claimed twice, the losers move on and
// end with ErrNoSandbox (never a conflict error).
func testRace(t *testing.T, f *fixture) {
	p := f.newPool(t, "race", false)
	ports := map[string]int32{}
	for i := range 6 {
		node := "node-a"
		if i >= 4 {
			node = "node-b"
		}
		port := startRunner(t, nil)
		pod := f.warmPod(t, p, node, port)
		ports[pod.Name] = port
	}
	reg := prometheus.NewRegistry()
	cl := f.claimer(t, reg)

	const claimers = 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners = map[string]*claim.Sandbox{}
		errs    []error
		lost    int
	)
	start := make(chan struct{})
	for i := range claimers {
		wg.Go(func() {
			<-start
			sb, err := cl.Claim(t.Context(), p.Namespace, p.Name, claim.Options{
				Claimant: fmt.Sprintf("claimer-%d", i),
				Grace:    500 * time.Millisecond,
				NoCold:   true,
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			lost += sb.Lost
			if prev, ok := winners[sb.Pod]; ok {
				t.Errorf("pod %s claimed twice: by %s and %s", sb.Pod, prev.Claimant, sb.Claimant)
			}
			winners[sb.Pod] = sb
		})
	}
	close(start)
	wg.Wait()
	t.Logf("%d winners, %d losers, %d races lost by the winners on their way", len(winners), len(errs), lost)

	if len(winners) != len(ports) {
		t.Errorf("%d pods claimed, want all %d", len(winners), len(ports))
	}
	if len(errs) != claimers-len(ports) {
		t.Errorf("%d claims failed, want %d", len(errs), claimers-len(ports))
	}
	for _, err := range errs {
		if !errors.Is(err, claim.ErrNoSandbox) {
			t.Errorf("a losing claim failed with %v, want ErrNoSandbox", err)
		}
	}
	for name, sb := range winners {
		pod, err := f.kube.CoreV1().Pods(p.Namespace).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := pod.Labels[v1alpha1.LabelState]; got != v1alpha1.StateClaimed {
			t.Errorf("pod %s state %q, want claimed", name, got)
		}
		if got := pod.Labels[v1alpha1.LabelOrigin]; got != v1alpha1.OriginWarm || sb.Origin != v1alpha1.OriginWarm {
			t.Errorf("pod %s origin label %q, sandbox origin %q; want warm", name, got, sb.Origin)
		}
		if got := pod.Annotations[v1alpha1.AnnotationClaimedBy]; got != sb.Claimant {
			t.Errorf("pod %s claimed-by %q, but %s won it", name, got, sb.Claimant)
		}
		if _, err := time.Parse(time.RFC3339Nano, pod.Annotations[v1alpha1.AnnotationClaimedAt]); err != nil {
			t.Errorf("pod %s claimed-at: %v", name, err)
		}
		// The runner behind the pod took exactly this winner's claim and
		// token.
		st, err := runnerAt(ports[name], sb.Token).Status(t.Context())
		if err != nil {
			t.Errorf("pod %s: the winner's token: %v", name, err)
			continue
		}
		if st.Claim == nil || st.Claim.Claimant != sb.Claimant {
			t.Errorf("pod %s runner claim %+v, want claimant %s", name, st.Claim, sb.Claimant)
		}
	}
	if got := counter(t, reg, "sandbox_claim_total", claim.ResultWarm); got != float64(len(ports)) {
		t.Errorf("sandbox_claim_total{result=warm} = %v, want %d", got, len(ports))
	}
	if got := counter(t, reg, "sandbox_claim_total", claim.ResultFailed); got != float64(claimers-len(ports)) {
		t.Errorf("sandbox_claim_total{result=failed} = %v, want %d", got, claimers-len(ports))
	}
	if got := counter(t, reg, "sandbox_claim_duration_seconds", claim.ResultWarm); got != float64(len(ports)) {
		t.Errorf("sandbox_claim_duration_seconds{result=warm} count = %v, want %d", got, len(ports))
	}
}

// testFreshToken: after a claim the pool token no longer works and the
// claimant's does; the claim's env reaches /execute; another claimer opens
// the sandbox by name (the token from the pod's Secret), copies files both
// ways, and releases it.
func testFreshToken(t *testing.T, f *fixture) {
	p := f.newPool(t, "token", false)
	port := startRunner(t, nil)
	pod := f.warmPod(t, p, "node-a", port)

	// Before the claim, the pool token works.
	if _, err := execute(t, runnerAt(port, poolToken), "true"); err != nil {
		t.Fatalf("pool token before the claim: %v", err)
	}
	// A file path that escapes the work directory is refused before any
	// pod is taken.
	if _, err := f.claimer(t, nil).Claim(t.Context(), p.Namespace, p.Name, claim.Options{
		Files: []claim.File{{Path: "../etc/passwd", Data: []byte("x")}},
	}); err == nil || !strings.Contains(err.Error(), `file "../etc/passwd"`) {
		t.Fatalf("claim with an escaping file path: %v, want a refusal naming the file", err)
	}
	sb, err := f.claimer(t, nil).Claim(t.Context(), p.Namespace, p.Name, claim.Options{
		Env:      map[string]string{"GREETING": "hello from the claim"},
		Claimant: "alice",
		Files:    []claim.File{{Path: "claim/run.sh", Data: []byte("#!/bin/sh\necho run by $GREETING\n"), Mode: 0o755}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := execute(t, sb.Runner(), "./claim/run.sh; stat -c %a claim/run.sh"); err != nil || out != "run by hello from the claim\n755\n" {
		t.Errorf("the claim's file: %q, %v; want it written with mode 755 before the claim returned", out, err)
	}
	if sb.Pod != pod.Name || sb.Origin != v1alpha1.OriginWarm || sb.Node != "node-a" {
		t.Errorf("claimed %+v, want warm pod %s on node-a", sb, pod.Name)
	}
	if sb.Token == poolToken || len(sb.Token) < api.MinClaimTokenLength {
		t.Errorf("claimant token %q is not a fresh token", sb.Token)
	}
	if _, err := execute(t, runnerAt(port, poolToken), "true"); runnerclient.StatusCode(err) != http.StatusUnauthorized {
		t.Errorf("pool token after the claim: err = %v, want 401", err)
	}
	out, err := execute(t, sb.Runner(), `echo "$GREETING"`)
	if err != nil || out != "hello from the claim\n" {
		t.Errorf("echo $GREETING = %q, %v; want the claim's env", out, err)
	}

	// A second claimer (sandboxctl exec in another process) opens it.
	other := f.claimer(t, nil)
	opened, err := other.Open(t.Context(), p.Namespace, pod.Name, claim.TransportDirect)
	if err != nil {
		t.Fatal(err)
	}
	if opened.Token != sb.Token || opened.Claimant != "alice" || opened.Origin != v1alpha1.OriginWarm {
		t.Errorf("opened %+v, want alice's warm sandbox with her token", opened)
	}
	var stdout, stderr bytes.Buffer
	res, err := opened.Exec(t.Context(), api.ExecuteRequest{Shell: `echo "$GREETING"; echo oops >&2; exit 3`}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 || stdout.String() != "hello from the claim\n" || stderr.String() != "oops\n" {
		t.Errorf("exec: exit %d, stdout %q, stderr %q", res.ExitCode, stdout.String(), stderr.String())
	}
	if err := opened.CopyTo(t.Context(), strings.NewReader("payload"), "in/data.txt", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := opened.Exec(t.Context(), api.ExecuteRequest{Shell: "tr a-z A-Z < in/data.txt > out.txt"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := opened.CopyFrom(t.Context(), "out.txt", &got); err != nil {
		t.Fatal(err)
	}
	if got.String() != "PAYLOAD" {
		t.Errorf("copied back %q, want PAYLOAD", got.String())
	}

	// The claimant's token is kept in a Secret the pod owns.
	s, err := f.kube.CoreV1().Secrets(p.Namespace).Get(t.Context(), claim.ClaimSecretName(pod.Name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != pod.UID {
		t.Errorf("claim Secret owners %+v, want the pod", s.OwnerReferences)
	}

	// A second claim of the same runner is refused by the runner itself.
	_, err = runnerAt(port, sb.Token).Claim(t.Context(), api.ClaimRequest{Token: strings.Repeat("y", 32)})
	if runnerclient.StatusCode(err) != http.StatusConflict {
		t.Errorf("second /claim: err = %v, want 409", err)
	}

	// Only claimed pool pods can be opened or released.
	warm := f.warmPod(t, p, "node-a", deadPort(t))
	if _, err := other.Open(t.Context(), p.Namespace, warm.Name, ""); !errors.Is(err, claim.ErrNotClaimed) {
		t.Errorf("opening a warm pod: %v, want ErrNotClaimed", err)
	}
	if err := other.Release(t.Context(), p.Namespace, warm.Name); !errors.Is(err, claim.ErrNotClaimed) {
		t.Errorf("releasing a warm pod: %v, want ErrNotClaimed", err)
	}

	if err := other.Release(t.Context(), p.Namespace, pod.Name); err != nil {
		t.Fatal(err)
	}
	// A bound pod is deleted gracefully: without a kubelet to confirm, it
	// stays with a deletion timestamp.
	if got, err := f.kube.CoreV1().Pods(p.Namespace).Get(t.Context(), pod.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) && (err != nil || got.DeletionTimestamp == nil) {
		t.Errorf("released pod: get err = %v, want it gone or being deleted", err)
	}
	if _, err := f.kube.CoreV1().Secrets(p.Namespace).Get(t.Context(), claim.ClaimSecretName(pod.Name), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("released pod's token Secret: get err = %v, want NotFound", err)
	}
}

// testDeadRunner: a Ready pod whose runner does not answer is never
// claimed; the claim takes the live one, and then reports no sandbox
// rather than taking the dead one.
func testDeadRunner(t *testing.T, f *fixture) {
	p := f.newPool(t, "dead", false)
	dead := f.warmPod(t, p, "node-a", deadPort(t))
	live := f.warmPod(t, p, "node-a", startRunner(t, nil))
	cl := f.claimer(t, nil)
	opts := claim.Options{Grace: 200 * time.Millisecond, NoCold: true}
	sb, err := cl.Claim(t.Context(), p.Namespace, p.Name, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sb.Pod != live.Name {
		t.Errorf("claimed %s, want the live pod %s", sb.Pod, live.Name)
	}
	_, err = cl.Claim(t.Context(), p.Namespace, p.Name, opts)
	if !errors.Is(err, claim.ErrNoSandbox) || !strings.Contains(err.Error(), "1 runners not answering") {
		t.Errorf("second claim: %v, want ErrNoSandbox with 1 runner not answering", err)
	}
	got, err := f.kube.CoreV1().Pods(p.Namespace).Get(t.Context(), dead.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels[v1alpha1.LabelState] != v1alpha1.StateWarm {
		t.Errorf("the dead pod's state is %q, want it left warm", got.Labels[v1alpha1.LabelState])
	}
}

// testWaitsForWarm: with no claimable pod, a claim waits (watching) for one
// that becomes Ready within the grace period instead of creating a cold pod.
func testWaitsForWarm(t *testing.T, f *fixture) {
	p := f.newPool(t, "wait", false)
	pod := pool.WarmPod(p, "node-a")
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: claim.RunnerPortName, ContainerPort: startRunner(t, nil)}}
	pod, err := f.kube.CoreV1().Pods(p.Namespace).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		pod.Status.Phase = corev1.PodRunning
		pod.Status.PodIP = "127.0.0.1"
		pod.Status.PodIPs = []corev1.PodIP{{IP: "127.0.0.1"}}
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if _, err := f.kube.CoreV1().Pods(pod.Namespace).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
	}()
	sb, err := f.claimer(t, nil).Claim(t.Context(), p.Namespace, p.Name, claim.Options{Grace: 30 * time.Second, NoCold: true})
	if err != nil {
		t.Fatal(err)
	}
	if sb.Pod != pod.Name || sb.Origin != v1alpha1.OriginWarm {
		t.Errorf("claimed %s (%s), want warm pod %s", sb.Pod, sb.Origin, pod.Name)
	}
	if sb.Timings.Total > 20*time.Second {
		t.Errorf("the claim took %s: it did not notice the pod become Ready", sb.Timings.Total)
	}
}

// testCold: an empty pool falls back, after the grace period, to a cold pod
// created from the template (injected by the real webhook), claimed from
// the start, and handed over once its runner answers.
func testCold(t *testing.T, f *fixture) {
	p := f.newPool(t, "cold", true)
	reg := prometheus.NewRegistry()
	cl := f.claimer(t, reg)
	// Pretend to be the kubelet: once the cold pod exists, start its
	// runner on the port the webhook gave it and report it Ready.
	go func() {
		var pod *corev1.Pod
		for pod == nil {
			l, err := f.kube.CoreV1().Pods(p.Namespace).List(t.Context(), metav1.ListOptions{LabelSelector: v1alpha1.LabelOrigin + "=" + v1alpha1.OriginCold})
			if err != nil {
				t.Errorf("listing cold pods: %v", err)
				return
			}
			if len(l.Items) > 1 {
				t.Errorf("%d cold pods, want 1", len(l.Items))
			}
			if len(l.Items) > 0 {
				pod = &l.Items[0]
			}
			time.Sleep(50 * time.Millisecond)
		}
		port, err := claim.RunnerPort(pod)
		if err != nil || port != f.coldPort {
			t.Errorf("cold pod runner port %d, %v; want %d injected by the webhook", port, err, f.coldPort)
			return
		}
		startRunner(t, f.coldLn)
		f.markReady(t, pod)
	}()
	start := time.Now()
	sb, err := cl.Claim(t.Context(), p.Namespace, p.Name, claim.Options{
		Grace: 300 * time.Millisecond,
		Env:   map[string]string{"K": "cold value"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sb.Origin != v1alpha1.OriginCold {
		t.Errorf("origin %q, want cold", sb.Origin)
	}
	if sb.Timings.Find < 300*time.Millisecond || time.Since(start) < 300*time.Millisecond {
		t.Errorf("fell back after %s, before the 300ms grace period", sb.Timings.Find)
	}
	pod, err := f.kube.CoreV1().Pods(p.Namespace).Get(t.Context(), sb.Pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Labels[v1alpha1.LabelState] != v1alpha1.StateClaimed || pod.Labels[v1alpha1.LabelOrigin] != v1alpha1.OriginCold || pod.Annotations[v1alpha1.AnnotationStatus] == "" {
		t.Errorf("cold pod labels %v, annotations %v: want claimed, cold, injected", pod.Labels, pod.Annotations)
	}
	out, err := execute(t, sb.Runner(), `echo "$K"`)
	if err != nil || out != "cold value\n" {
		t.Errorf("echo $K = %q, %v", out, err)
	}
	if got := counter(t, reg, "sandbox_claim_total", claim.ResultCold); got != 1 {
		t.Errorf("sandbox_claim_total{result=cold} = %v, want 1", got)
	}
}
