// Package claimtest runs the claim controller against a real kube-apiserver
// and etcd (envtest) with real runner processes standing in for the pods'
// runners, for the tests of the controller and its clients.
//
// Nothing runs pods under envtest, so WarmPod does what the node agent, the
// webhook and the kubelet would: it starts a sandbox-runner on loopback
// with the claim verifier the webhook would give it, creates the pool pod
// with that nonce and the runner's port, and marks it Running and Ready at
// 127.0.0.1.
package claimtest

import (
	"bufio"
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

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim/controller"
	"sandbox.io/injector/internal/claimkey"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner/api"
)

// Env is an API server with the claim controller running against it.
type Env struct {
	T      testing.TB
	Config *rest.Config
	Client client.Client
	// Keys are the claim keys WarmPod injects under (the current one) and
	// the controllers StartController runs hold, unless its options give
	// others.
	Keys *claimkey.Ring
	// Registry holds the controller's metrics.
	Registry *prometheus.Registry

	mu      sync.Mutex
	runners []*exec.Cmd
}

// Options change what Start runs.
type Options struct {
	// Controller options; Keys (unless set) and Registerer are filled in.
	Controller controller.Options
	// NoController starts only the API server (tests that run their own).
	NoController bool
}

// Start starts an API server with the CRDs and, unless opts.NoController,
// the claim controller; everything stops when the test ends.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	cfg, c := testenv.StartWithCRDs(t)
	e := &Env{T: t, Config: cfg, Client: c, Keys: testKeys(), Registry: prometheus.NewRegistry()}
	t.Cleanup(e.stopRunners)
	if !opts.NoController {
		e.StartController(opts.Controller, "")
	}
	return e
}

// Attach is Start against an API server the test already runs (cfg, c),
// with no controller: the test starts one with StartController.
func Attach(t testing.TB, cfg *rest.Config, c client.Client) *Env {
	t.Helper()
	e := &Env{T: t, Config: cfg, Client: c, Keys: testKeys(), Registry: prometheus.NewRegistry()}
	t.Cleanup(e.stopRunners)
	return e
}

// testKeys is the ring of an Env: a fixed current key, no previous one.
func testKeys() *claimkey.Ring {
	return claimkey.NewRing(claimkey.Keys{Current: claimkey.Key("claimtest-claim-key-0123456789abcdef")})
}

// StartController runs a manager with the claim controller until the test
// ends; with leaseNamespace set it takes part in leader election there and
// the returned function stops it (a leader that dies without releasing its
// lease).
func (e *Env) StartController(o controller.Options, leaseNamespace string) (stop func()) {
	e.T.Helper()
	if o.Keys == nil {
		o.Keys = e.Keys
	}
	switch {
	case o.Registerer != nil:
	case leaseNamespace != "":
		// Several controllers in one process: a registry each.
		o.Registerer = prometheus.NewRegistry()
	default:
		o.Registerer = e.Registry
	}
	mopts := manager.Options{Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"}
	if leaseNamespace != "" {
		lease, renew, retry := 4*time.Second, 3*time.Second, 500*time.Millisecond
		mopts.LeaderElection = true
		mopts.LeaderElectionID = "sandbox-injector-claims"
		mopts.LeaderElectionNamespace = leaseNamespace
		mopts.LeaderElectionReleaseOnCancel = false
		mopts.LeaseDuration, mopts.RenewDeadline, mopts.RetryPeriod = &lease, &renew, &retry
	}
	mgr, err := ctrl.NewManager(e.Config, mopts)
	if err != nil {
		e.T.Fatalf("creating a manager: %v", err)
	}
	if err := controller.Setup(mgr, o); err != nil {
		e.T.Fatalf("setting up the claim controller: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			e.T.Errorf("claim controller manager: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	e.T.Cleanup(stop)
	return stop
}

// Namespace creates a namespace with a generated name.
func (e *Env) Namespace() string {
	e.T.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "claims-"}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		e.T.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// Node creates a Node the pools count as eligible (no taints), once.
func (e *Env) Node(name string) {
	e.T.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := e.Client.Create(context.Background(), n); err != nil && !strings.Contains(err.Error(), "already exists") {
		e.T.Fatalf("creating node %s: %v", name, err)
	}
	// The API server gives new nodes the not-ready taint; a kubelet would
	// clear it.
	testenv.Eventually(e.T, 30*time.Second, "node "+name+" without taints", func() error {
		var got corev1.Node
		if err := e.Client.Get(context.Background(), client.ObjectKey{Name: name}, &got); err != nil {
			return err
		}
		if len(got.Spec.Taints) == 0 {
			return nil
		}
		got.Spec.Taints = nil
		return e.Client.Update(context.Background(), &got)
	})
}

// Pool creates a SandboxPool of busybox-like sandboxes with perNode warm
// pods per node.
func (e *Env) Pool(ns, name string, perNode int32) *v1alpha1.SandboxPool {
	e.T.Helper()
	p := &v1alpha1.SandboxPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.SandboxPoolSpec{
			Template:    v1alpha1.SandboxTemplate{Image: "registry.test/busybox:1"},
			PodsPerNode: &perNode,
		},
	}
	if err := e.Client.Create(context.Background(), p); err != nil {
		e.T.Fatalf("creating pool %s/%s: %v", ns, name, err)
	}
	return p
}

// WarmPod makes a Ready warm pod of p on node with a real runner behind it,
// as the agent, the webhook and the kubelet would.
func (e *Env) WarmPod(p *v1alpha1.SandboxPool, node string) *corev1.Pod {
	e.T.Helper()
	return e.WarmPodUnder(p, node, e.Keys.Keys().Current, nil)
}

// WarmPodUnder is WarmPod injected under key; mutate, when not nil,
// changes the pod before it is created.
func (e *Env) WarmPodUnder(p *v1alpha1.SandboxPool, node string, key claimkey.Key, mutate func(*corev1.Pod)) *corev1.Pod {
	e.T.Helper()
	nonce, err := claimkey.NewNonce()
	if err != nil {
		e.T.Fatal(err)
	}
	pod := pool.WarmPod(p, node)
	pod.Annotations[v1alpha1.AnnotationClaimNonce] = nonce
	if mutate != nil {
		mutate(pod)
	}
	return e.RunPod(pod, pool.ClaimVerifierFlag+key.Verifier(p.Namespace, nonce))
}

// RunPod starts a runner on loopback with runnerArgs, creates pod with its
// first container running it as the webhook would inject it (the command
// names runnerArgs; the runner port is the runner's), and marks it
// Running and Ready at 127.0.0.1.
func (e *Env) RunPod(pod *corev1.Pod, runnerArgs ...string) *corev1.Pod {
	e.T.Helper()
	port := e.StartRunner(runnerArgs...)
	ctx := context.Background()
	c := &pod.Spec.Containers[0]
	c.Command = append([]string{"/.sandbox/runner", "run"}, runnerArgs...)
	c.Ports = append(c.Ports, corev1.ContainerPort{Name: api.PortName, ContainerPort: port})
	if err := e.Client.Create(ctx, pod); err != nil {
		e.T.Fatalf("creating pod: %v", err)
	}
	e.MarkReady(pod)
	return pod
}

// MarkReady sets pod Running and Ready at 127.0.0.1, as a kubelet would
// (re-reading the pod when someone changed it meanwhile, as the claim
// controller does when it deletes an orphan).
func (e *Env) MarkReady(pod *corev1.Pod) {
	e.T.Helper()
	now := metav1.Now()
	status := corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: "127.0.0.1", PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}},
	}
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod.Status = status
		err := e.Client.Status().Update(ctx, pod)
		if apierrors.IsConflict(err) {
			if gerr := e.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); gerr != nil {
				return gerr
			}
		}
		return err
	})
	if err != nil {
		e.T.Fatalf("marking pod %s Ready: %v", pod.Name, err)
	}
}

// StartRunner starts a sandbox-runner on loopback with args and returns its
// port; it is killed when the test ends.
func (e *Env) StartRunner(args ...string) int32 {
	e.T.Helper()
	bin := RunnerBinary(e.T)
	cmd := exec.Command(bin, append([]string{"run", "--listen=127.0.0.1:0", "--workdir=" + e.T.TempDir()}, args...)...)
	// The runner logs JSON lines to stderr; the "serving" one has its
	// address.
	logs, err := cmd.StderrPipe()
	if err != nil {
		e.T.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.T.Fatalf("starting the runner: %v", err)
	}
	e.mu.Lock()
	e.runners = append(e.runners, cmd)
	e.mu.Unlock()
	lines := bufio.NewScanner(logs)
	for lines.Scan() {
		var l struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(lines.Bytes(), &l) == nil && l.Msg == "serving" {
			go func() {
				for lines.Scan() {
				}
			}()
			var port int32
			if _, err := fmt.Sscanf(l.Addr[strings.LastIndex(l.Addr, ":")+1:], "%d", &port); err != nil {
				e.T.Fatalf("runner address %q: %v", l.Addr, err)
			}
			return port
		}
	}
	e.T.Fatalf("the runner ended before serving: %v", lines.Err())
	return 0
}

func (e *Env) stopRunners() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.runners {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	e.runners = nil
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// RunnerBinary builds cmd/sandbox-runner once per test process.
func RunnerBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := testenv.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "claimtest-runner-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "sandbox-runner")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/sandbox-runner")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building the runner: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// WaitPhase waits until the claim reaches one of phases and returns it.
func (e *Env) WaitPhase(ns, name string, timeout time.Duration, phases ...v1alpha1.ClaimPhase) *v1alpha1.SandboxClaim {
	e.T.Helper()
	var got v1alpha1.SandboxClaim
	testenv.Eventually(e.T, timeout, fmt.Sprintf("claim %s/%s in phase %v", ns, name, phases), func() error {
		if err := e.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &got); err != nil {
			return err
		}
		for _, p := range phases {
			if got.Status.Phase == p {
				return nil
			}
		}
		return fmt.Errorf("phase %q, conditions %+v", got.Status.Phase, got.Status.Conditions)
	})
	return &got
}

// WaitPoolReady waits until the controller's status of pool p counts at
// least n Ready warm pods. The status is written from the controller's
// cache, so its claims see those pods from then on: a claim that must not
// go cold (spec.coldStart Never) made right after the pods were marked
// Ready could otherwise find none.
func (e *Env) WaitPoolReady(p *v1alpha1.SandboxPool, n int32) {
	e.T.Helper()
	testenv.Eventually(e.T, 30*time.Second, fmt.Sprintf("pool %s/%s with %d Ready warm pods", p.Namespace, p.Name, n), func() error {
		var got v1alpha1.SandboxPool
		if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(p), &got); err != nil {
			return err
		}
		if got.Status.Ready < n {
			return fmt.Errorf("status %+v", got.Status)
		}
		return nil
	})
}
