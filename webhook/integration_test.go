package webhook_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/charts"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/internal/testregistry"
	"sandbox.io/injector/webhook"
	"sandbox.io/injector/webhook/entrypoint"
)

const runnerImage = "runner.test/sandbox-runner:v0.1.0"

// cluster is a real kube-apiserver with the chart's
// MutatingWebhookConfiguration pointing at an in-process webhook.
type cluster struct {
	c        client.Client
	server   crwebhook.Server
	baseURL  string // https://host:port of the webhook server
	caPEM    []byte // CA of the webhook server's certificate
	metrics  *prometheus.Registry
	registry string // host:port of a private loopback registry
}

// admissions returns how many admissions the handler counted with result.
func (cl *cluster) admissions(t *testing.T, result string) float64 {
	t.Helper()
	families, err := cl.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "sandbox_webhook_admissions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	return startClusterLogging(t, nil)
}

// startClusterLogging is startCluster with the handler logging to log (nil
// discards).
func startClusterLogging(t *testing.T, log *slog.Logger) *cluster {
	t.Helper()
	helm, err := charts.HelmPath()
	if err != nil {
		testenv.Missing(t, err.Error())
	}
	objs, err := charts.Render(t.Context(), helm, nil)
	if err != nil {
		t.Fatal(err)
	}
	mwc, err := charts.MutatingWebhookConfiguration(objs)
	if err != nil {
		t.Fatal(err)
	}

	env := &envtest.Environment{}
	cfg := testenv.Start(t, env)
	wio := &env.WebhookInstallOptions

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer: crwebhook.NewServer(crwebhook.Options{
			Host: wio.LocalServingHost, Port: wio.LocalServingPort, CertDir: wio.LocalServingCertDir,
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	err = webhook.SetupWithManager(t.Context(), mgr, webhook.Config{
		RunnerImage:      runnerImage,
		ReleaseNamespace: charts.DefaultNamespace,
	}, webhook.SetupOptions{Resolver: entrypoint.NewResolver(entrypoint.Config{AllowPrivate: true}), Registerer: reg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(t.Context()) }()
	t.Cleanup(func() {
		if err := <-done; err != nil && !errors.Is(err, t.Context().Err()) {
			t.Errorf("manager: %v", err)
		}
	})
	waitFor(t, "the webhook server to serve TLS", func() error {
		return mgr.GetWebhookServer().StartedChecker()(nil)
	})

	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("https://%s:%d", wio.LocalServingHost, wio.LocalServingPort)
	if err := c.Create(t.Context(), charts.PointAt(mwc, url, wio.LocalServingCAData)); err != nil {
		t.Fatalf("registering the chart's webhook configuration: %v", err)
	}
	cl := &cluster{c: c, metrics: reg, registry: startRegistry(t),
		server: mgr.GetWebhookServer(), baseURL: url, caPEM: wio.LocalServingCAData}

	// The API server's webhook client picks the configuration up shortly
	// after it is created: wait until a dry-run pod comes back injected.
	ns := cl.namespace(t, "warmup", nil)
	waitFor(t, "the API server to call the webhook", func() error {
		pod := annotatedPod(ns, "probe", nil)
		if err := c.Create(t.Context(), pod, client.DryRunAll); err != nil {
			return err
		}
		if pod.Annotations[v1alpha1.AnnotationStatus] == "" {
			return errors.New("pod not injected yet")
		}
		return nil
	})
	return cl
}

var registryUser, registryPass = "robot", "pull-me"

// startRegistry serves a real registry on loopback that needs basic auth,
// holding one image whose ENTRYPOINT and CMD the webhook must read.
func startRegistry(t *testing.T) string {
	t.Helper()
	reg := testregistry.New(t, testregistry.WithBasicAuth(registryUser, registryPass))
	img, err := random.Image(32, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Entrypoint, cf.Config.Cmd = []string{"/server"}, []string{"--listen=:8080"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	reg.Push(t, "private/server:v1", img)
	return reg.Host
}

var nsCounter atomic.Int64

func (cl *cluster) namespace(t *testing.T, prefix string, labels map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, nsCounter.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := cl.c.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return name
}

func annotatedPod(ns, name string, annotations map[string]string) *corev1.Pod {
	ann := map[string]string{v1alpha1.AnnotationInject: "true"}
	for k, v := range annotations {
		ann[k] = v
	}
	return plainPod(ns, name, ann)
}

func plainPod(ns, name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "app.test/app:v1", Command: []string{"/app", "--serve"},
		}}},
	}
}

func isInjected(pod *corev1.Pod) bool {
	return len(pod.Spec.InitContainers) > 0 && pod.Spec.InitContainers[0].Name == webhook.InitContainerName &&
		len(pod.Spec.Containers[0].Command) > 0 && pod.Spec.Containers[0].Command[0] == webhook.RunnerPath &&
		pod.Annotations[v1alpha1.AnnotationStatus] != ""
}

func TestAdmissionThroughAPIServer(t *testing.T) {
	cl := startCluster(t)
	ctx := t.Context()

	t.Run("annotated pod is injected", func(t *testing.T) {
		ns := cl.namespace(t, "plain", nil)
		pod := annotatedPod(ns, "app", nil)
		if err := cl.c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		var got corev1.Pod
		if err := cl.c.Get(ctx, client.ObjectKeyFromObject(pod), &got); err != nil {
			t.Fatal(err)
		}
		if !isInjected(&got) {
			t.Fatalf("stored pod is not injected: %+v", got.Spec)
		}
		cmd := got.Spec.Containers[0].Command
		if want := []string{"--", "/app", "--serve"}; !equalTail(cmd, want) {
			t.Errorf("command %q does not end with the original after --", cmd)
		}
	})

	t.Run("generateName pod is injected", func(t *testing.T) {
		ns := cl.namespace(t, "gen", nil)
		pod := annotatedPod(ns, "", nil)
		pod.GenerateName = "job-"
		if err := cl.c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if !isInjected(pod) || !strings.HasPrefix(pod.Name, "job-") {
			t.Errorf("pod %s not injected", pod.Name)
		}
	})

	t.Run("enabled namespace injects a pod without annotation", func(t *testing.T) {
		// Created just before the pod: the handler must not miss it while
		// its namespace cache catches up.
		ns := cl.namespace(t, "enabled", map[string]string{v1alpha1.LabelInject: v1alpha1.InjectEnabled})
		pod := plainPod(ns, "app", nil)
		if err := cl.c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if !isInjected(pod) {
			t.Errorf("pod in an enabled namespace was not injected")
		}
	})

	t.Run("opt-out wins over the namespace", func(t *testing.T) {
		ns := cl.namespace(t, "enabled", map[string]string{v1alpha1.LabelInject: v1alpha1.InjectEnabled})
		pod := plainPod(ns, "app", map[string]string{v1alpha1.AnnotationInject: "false"})
		if err := cl.c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if len(pod.Spec.InitContainers) != 0 || pod.Annotations[v1alpha1.AnnotationStatus] != "" {
			t.Errorf("opted-out pod was mutated")
		}
	})

	t.Run("pod that did not opt in never reaches the webhook", func(t *testing.T) {
		ns := cl.namespace(t, "plain", nil)
		before := cl.admissions(t, webhook.ResultSkipped) + cl.admissions(t, webhook.ResultInjected)
		pod := plainPod(ns, "app", nil)
		if err := cl.c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if len(pod.Spec.InitContainers) != 0 {
			t.Error("pod that did not opt in was mutated")
		}
		if after := cl.admissions(t, webhook.ResultSkipped) + cl.admissions(t, webhook.ResultInjected); after != before {
			t.Errorf("the webhook was called for a pod that did not opt in (matchConditions should filter it)")
		}
	})

	t.Run("malformed annotation is refused with a message naming the key", func(t *testing.T) {
		ns := cl.namespace(t, "plain", nil)
		for _, tc := range []struct{ key, value, want string }{
			{v1alpha1.AnnotationInject, "yes", `sandbox.io/inject: value "yes" is not allowed; use "true" or "false"`},
			{v1alpha1.AnnotationMode, "daemon", `sandbox.io/mode: value "daemon" is not allowed; use "server" or "wrap"`},
			{v1alpha1.AnnotationContainers, "ghost", `sandbox.io/containers: container "ghost" is not in the pod`},
		} {
			pod := annotatedPod(ns, "bad", map[string]string{tc.key: tc.value})
			err := cl.c.Create(ctx, pod)
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s=%q: err = %v, want Forbidden containing %q", tc.key, tc.value, err, tc.want)
			}
		}
	})

	t.Run("excluded namespace is never touched", func(t *testing.T) {
		pod := annotatedPod("kube-system", "annotated", nil)
		if err := cl.c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if len(pod.Spec.InitContainers) != 0 {
			t.Error("pod in kube-system was mutated")
		}
	})

	t.Run("server dry-run gives the same result and stores nothing", func(t *testing.T) {
		ns := cl.namespace(t, "dry", nil)
		dry := annotatedPod(ns, "app", nil)
		if err := cl.c.Create(ctx, dry, client.DryRunAll); err != nil {
			t.Fatal(err)
		}
		if !isInjected(dry) {
			t.Fatal("dry-run result not injected")
		}
		err := cl.c.Get(ctx, client.ObjectKeyFromObject(dry), &corev1.Pod{})
		if !apierrors.IsNotFound(err) {
			t.Fatalf("dry-run pod was stored: %v", err)
		}
		real := annotatedPod(ns, "app", nil)
		if err := cl.c.Create(ctx, real); err != nil {
			t.Fatal(err)
		}
		if !equalSpecs(dry, real) {
			t.Error("dry-run and real creation were mutated differently")
		}
	})

	t.Run("restricted namespace admits an injected compliant pod", func(t *testing.T) {
		ns := cl.namespace(t, "restricted", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
		pod := annotatedPod(ns, "app", nil)
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To(int64(1000)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}
		pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		}
		if err := cl.c.Create(ctx, pod); err != nil {
			t.Fatalf("restricted namespace refused the injected pod: %v", err)
		}
		if !isInjected(pod) {
			t.Error("pod not injected")
		}
	})

	t.Run("entrypoint read from a private registry with the pod's pull secret", func(t *testing.T) {
		ns := cl.namespace(t, "private", nil)
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pull"},
			Type:       corev1.SecretTypeDockerConfigJson,
			StringData: map[string]string{corev1.DockerConfigJsonKey: fmt.Sprintf(
				`{"auths":{%q:{"username":%q,"password":%q}}}`, cl.registry, registryUser, registryPass)},
		}
		if err := cl.c.Create(ctx, secret); err != nil {
			t.Fatal(err)
		}
		pod := annotatedPod(ns, "server", nil)
		pod.Spec.Containers[0].Command = nil
		pod.Spec.Containers[0].Image = cl.registry + "/private/server:v1"
		pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
		if err := cl.c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		c := pod.Spec.Containers[0]
		if !equalTail(c.Command, []string{"--", "/server"}) || strings.Join(c.Args, " ") != "--listen=:8080" {
			t.Errorf("command %q args %q; want the image's ENTRYPOINT after -- and its CMD as args", c.Command, c.Args)
		}

		// A pull secret that does not exist is skipped, as the kubelet
		// skips it, and a service account that does not exist too: the
		// pod is admitted and the secret that does exist still works.
		pod = annotatedPod(ns, "missing-secret", nil)
		pod.Spec.Containers[0].Command = nil
		pod.Spec.Containers[0].Image = cl.registry + "/private/server:v1"
		pod.Spec.ServiceAccountName = "no-such-account"
		pod.Spec.AutomountServiceAccountToken = ptr.To(false)
		pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "no-such-secret"}, {Name: "pull"}}
		if err := cl.c.Create(ctx, pod, client.DryRunAll); err != nil {
			t.Fatalf("a pod naming a missing pull secret and service account: %v, want it admitted", err)
		}
		if c := pod.Spec.Containers[0]; !equalTail(c.Command, []string{"--", "/server"}) {
			t.Errorf("with a missing secret beside a good one: command %q, want the image's ENTRYPOINT read with the good one", c.Command)
		}

		// Without the secret the lookup fails: server mode starts the runner
		// without a child and says so.
		pod = annotatedPod(ns, "nosecret", nil)
		pod.Spec.Containers[0].Command = nil
		pod.Spec.Containers[0].Image = cl.registry + "/private/server:v1"
		if err := cl.c.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if st := pod.Annotations[v1alpha1.AnnotationStatus]; !strings.Contains(st, "no child process") {
			t.Errorf("status annotation %q does not say the runner has no child", st)
		}
	})
}

func TestInjectionMethodFromNodeLabels(t *testing.T) {
	cl := startCluster(t)
	ctx := t.Context()
	ns := cl.namespace(t, "method", nil)
	method := func(pod *corev1.Pod) string {
		var st v1alpha1.InjectionStatus
		if err := json.Unmarshal([]byte(pod.Annotations[v1alpha1.AnnotationStatus]), &st); err != nil {
			t.Fatalf("status annotation %q: %v", pod.Annotations[v1alpha1.AnnotationStatus], err)
		}
		return st.Method
	}
	dryRun := func(nodeName string) string {
		t.Helper()
		pod := annotatedPod(ns, "p", nil)
		pod.Spec.NodeName = nodeName
		if err := cl.c.Create(ctx, pod, client.DryRunAll); err != nil {
			t.Fatal(err)
		}
		return method(pod)
	}

	// No node at all: copy.
	if m := dryRun(""); m != v1alpha1.MethodCopy {
		t.Errorf("with no nodes: method %s, want copy", m)
	}
	node := func(name, label string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelImageVolume: label}}}
		if err := cl.c.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	yes, no := node("iv-yes", "true"), node("iv-no", "false")
	// The handler learns nodes from its informer: wait until it sees both.
	waitFor(t, "the webhook to see the nodes", func() error {
		if m := dryRun("iv-yes"); m != v1alpha1.MethodImageVolume {
			return fmt.Errorf("pod bound to a supporting node: method %s", m)
		}
		return nil
	})
	if m := dryRun("iv-no"); m != v1alpha1.MethodCopy {
		t.Errorf("pod bound to an unsupporting node: method %s, want copy", m)
	}
	if m := dryRun(""); m != v1alpha1.MethodCopy {
		t.Errorf("unbound pod, mixed nodes: method %s, want copy", m)
	}
	no.Labels[v1alpha1.LabelImageVolume] = "true"
	if err := cl.c.Update(ctx, no); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every node to support image volumes", func() error {
		if m := dryRun(""); m != v1alpha1.MethodImageVolume {
			return fmt.Errorf("unbound pod, every node supporting: method %s", m)
		}
		return nil
	})
	for _, n := range []*corev1.Node{yes, no} {
		if err := cl.c.Delete(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the webhook to forget the nodes", func() error {
		if m := dryRun(""); m != v1alpha1.MethodCopy {
			return fmt.Errorf("no nodes left: method %s", m)
		}
		return nil
	})
}

func equalTail(got, tail []string) bool {
	if len(got) < len(tail) {
		return false
	}
	for i := range tail {
		if got[len(got)-len(tail)+i] != tail[i] {
			return false
		}
	}
	return true
}

func equalSpecs(a, b *corev1.Pod) bool {
	return fmt.Sprint(a.Spec.InitContainers, a.Spec.Containers, a.Spec.Volumes) ==
		fmt.Sprint(b.Spec.InitContainers, b.Spec.Containers, b.Spec.Volumes)
}

func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, what, check)
}
