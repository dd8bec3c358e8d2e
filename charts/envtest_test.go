package charts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sandbox.io/injector/internal/testenv"
)

// The CRDs of the APIs the chart writes to when asked, from their modules'
// zips, downloaded at test time and never added to go.mod: cert-manager's
// (deploy/crds), and the Prometheus Operator's monitors and rules
// (example/prometheus-operator-crd), so that the API server validates every
// object the chart renders against its real schema.
const (
	certManagerModule        = "github.com/cert-manager/cert-manager@v1.21.2"
	prometheusOperatorModule = "github.com/prometheus-operator/prometheus-operator@v0.89.0"
)

// The shared API server: started by the first test that needs it, stopped
// by TestMain.
var apiServer struct {
	once sync.Once
	env  *envtest.Environment
	cfg  *rest.Config
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if webhookBinary.path != "" {
		_ = os.RemoveAll(filepath.Dir(webhookBinary.path))
	}
	if apiServer.env != nil && apiServer.cfg != nil {
		if err := apiServer.env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}
	os.Exit(code)
}

// requireAPIServer returns a client of a real kube-apiserver (and etcd) from
// KUBEBUILDER_ASSETS, default bin/, with cert-manager's CRDs installed. When
// the binaries are missing the test fails under CI and is skipped loudly
// otherwise.
func requireAPIServer(t *testing.T) client.Client {
	t.Helper()
	assets := testenv.Assets(t)
	apiServer.once.Do(func() {
		certManager, err := moduleDir(t.Context(), certManagerModule)
		if err != nil {
			apiServer.err = err
			return
		}
		prometheusOperator, err := moduleDir(t.Context(), prometheusOperatorModule)
		if err != nil {
			apiServer.err = err
			return
		}
		monitoring := filepath.Join(prometheusOperator, "example", "prometheus-operator-crd")
		apiServer.env = &envtest.Environment{
			BinaryAssetsDirectory: assets,
			CRDDirectoryPaths: []string{
				filepath.Join(certManager, "deploy", "crds"),
				filepath.Join(monitoring, "monitoring.coreos.com_servicemonitors.yaml"),
				filepath.Join(monitoring, "monitoring.coreos.com_podmonitors.yaml"),
				filepath.Join(monitoring, "monitoring.coreos.com_prometheusrules.yaml"),
			},
			ErrorIfCRDPathMissing:    true,
			ControlPlaneStartTimeout: 3 * time.Minute, // 2 shared cores
			ControlPlaneStopTimeout:  time.Minute,
		}
		apiServer.cfg, apiServer.err = apiServer.env.Start()
		if apiServer.err != nil {
			apiServer.err = fmt.Errorf("starting envtest from %s: %w", assets, apiServer.err)
		}
	})
	if apiServer.err != nil {
		t.Fatal(apiServer.err)
	}
	c, err := client.New(apiServer.cfg, client.Options{FieldValidation: metav1.FieldValidationStrict})
	if err != nil {
		t.Fatalf("creating client: %v", err)
	}
	return c
}

// apiServerKubeconfig writes a kubeconfig of the test API server (which
// requireAPIServer started) to a file of the test and returns its path, for
// helm and the binaries.
func apiServerKubeconfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, apiServer.env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// moduleDir downloads module (path@version) through the Go module proxy, or
// finds it in the module cache, and returns its directory.
func moduleDir(ctx context.Context, module string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	// Outside any module, so that the download never touches go.mod or go.sum.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("downloading %s: %w: %s", module, err, stderr.String())
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &mod); err != nil {
		return "", fmt.Errorf("decoding go mod download output: %w", err)
	}
	if mod.Error != "" || mod.Dir == "" {
		return "", fmt.Errorf("downloading %s: %s", module, mod.Error)
	}
	return mod.Dir, nil
}

// clusterWide keeps the tests that install the whole chart apart from the
// tests that create pods labelled sandbox.io/pool. An installed release's
// pool-pods ValidatingAdmissionPolicy is bound in every namespace, as it
// must be in a cluster, and refuses every creator but its own release's, so
// it would refuse the creators the pool tests admit. Installs share the
// read side (they may run together); a pool test takes the write side.
var clusterWide sync.RWMutex

// installsWholeChart marks a test that installs the chart with helm: no pool
// test runs until its uninstall (registered after this call) is done.
func installsWholeChart(t *testing.T) {
	t.Helper()
	clusterWide.RLock()
	t.Cleanup(clusterWide.RUnlock)
}

// createsPoolPods marks a test that creates pool-labelled pods: it waits
// until no installed release's pool-pods policy is in force any more (the
// API server's admission drops a deleted policy a moment after the
// uninstall), probing a namespace no test scopes a policy to.
func createsPoolPods(t *testing.T, admin client.Client) {
	t.Helper()
	clusterWide.Lock()
	t.Cleanup(clusterWide.Unlock)
	const ns = "pool-policy-probe"
	createNamespace(t, admin, ns, nil)
	if err := admin.Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	eventually(t, "no installed release's pool-pods policy in force", func() error {
		return admin.Create(t.Context(), testPod(ns, "probe", nil, func(p *corev1.Pod) {
			p.Labels = map[string]string{"sandbox.io/pool": "probe"}
		}), client.DryRunAll)
	})
}

// createNamespace creates a namespace with labels, or fails the test.
func createNamespace(t *testing.T, c client.Client, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := c.Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// TestServerSideDryRun sends every object the chart renders, for every value
// set, to a real kube-apiserver as a dry-run create with strict field
// validation: the API server's own validation (including compiling the CEL
// of matchConditions and of the guard policy, and cert-manager's CRD
// schemas) accepts each one, and no field is unknown.
func TestServerSideDryRun(t *testing.T) {
	t.Parallel()
	requireHelm(t)
	c := requireAPIServer(t)
	for i, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			ns := fmt.Sprintf("dry-run-%d", i)
			createNamespace(t, c, ns, nil)
			objs := render(t, Release{Namespace: ns, Values: vs.values})
			if len(objs) < 10 {
				t.Fatalf("rendered only %d objects", len(objs))
			}
			for _, o := range objs {
				if err := c.Create(t.Context(), o.DeepCopy(), client.DryRunAll); err != nil {
					t.Errorf("%s %s: API server refused it: %v", o.GetKind(), o.GetName(), err)
				}
			}
		})
	}
}

// TestWebhookPodRestricted creates the webhook's pod, as the Deployment
// templates it, in a namespace that enforces the Pod Security Standard
// "restricted": the API server's PodSecurity admission must accept it.
func TestWebhookPodRestricted(t *testing.T) {
	t.Parallel()
	requireHelm(t)
	c := requireAPIServer(t)
	const ns = "restricted-system"
	createNamespace(t, c, ns, map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	})
	objs := render(t, Release{Namespace: ns})
	dep := one[appsv1.Deployment](t, objs, "Deployment")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "webhook", Labels: dep.Spec.Template.Labels},
		Spec:       dep.Spec.Template.Spec,
	}
	// The pod's ServiceAccount need not exist: envtest runs no ServiceAccount admission.
	if err := c.Create(t.Context(), pod, client.DryRunAll); err != nil {
		t.Fatalf("the webhook pod is not admitted under the restricted Pod Security Standard: %v", err)
	}

	// The check is real: a pod that breaks the standard is refused there.
	bad := pod.DeepCopy()
	bad.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	if err := c.Create(t.Context(), bad, client.DryRunAll); err == nil || !strings.Contains(err.Error(), "allowPrivilegeEscalation") {
		t.Fatalf("a pod without allowPrivilegeEscalation=false was answered %v, want a PodSecurity refusal", err)
	}
}

// installCRDs installs the chart's CRDs (SandboxPool, SandboxClaim) on the
// shared API server.
func installCRDs(t *testing.T) {
	t.Helper()
	repo, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envtest.InstallCRDs(apiServer.cfg, envtest.CRDInstallOptions{
		Paths: []string{repo + "/charts/sandbox-injector/crds"}, ErrorIfPathMissing: true,
	}); err != nil {
		t.Fatalf("installing the chart's CRDs: %v", err)
	}
}
