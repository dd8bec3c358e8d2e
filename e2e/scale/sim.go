package scale

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sandbox.io/injector/e2e/claimbench"
	"sandbox.io/injector/internal/simnet"
	"sandbox.io/injector/internal/testenv"
)

// PodCIDR is where kwok takes simulated pod addresses from: node i gets
// 10.244.i.0/24. Nothing serves them; only simnet's Dialer reaches them,
// through stand-ins on loopback.
var PodCIDR = netip.MustParsePrefix("10.244.0.0/16")

// NodeIP is the address kwok gives every simulated node (inside PodCIDR's
// /16 as well, so that no simulated address is outside the guarded range).
const NodeIP = "10.244.0.1"

// Sim is a real kube-apiserver and etcd, kwok simulating nodes and pods,
// a counting proxy for the controller under test, and fake runners on
// loopback that the simulated pods' addresses map to.
type Sim struct {
	Env    *envtest.Environment
	Admin  *rest.Config // the API server itself, uncounted
	Kube   kubernetes.Interface
	Proxy  *CountingProxy
	Dialer *simnet.Dialer
	Runner *FakeRunner
	Bin    string // the repository's bin/

	kwok  *claimbench.Process
	nodes []string
}

// StartSim starts the API server with the project's CRDs and
// agent-sandbox's (bin/crds/agent-sandbox), the counting proxy, the fake
// runner and kwok; all stop when the test ends.
func StartSim(t *testing.T) *Sim {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin")
	for _, need := range []string{"kwok", "kwok-stages.yaml", "agent-sandbox-controller", "crds/agent-sandbox"} {
		if _, err := os.Stat(filepath.Join(bin, need)); err != nil {
			testenv.Missing(t, fmt.Sprintf("bin/%s (run make tools-peers)", need))
		}
	}
	env := &envtest.Environment{
		CRDDirectoryPaths: []string{
			filepath.Join(root, "charts", "sandbox-injector", "crds"),
			filepath.Join(bin, "crds", "agent-sandbox"),
		},
		ErrorIfCRDPathMissing: true,
	}
	admin := testenv.Start(t, env)
	admin.QPS, admin.Burst = 1000, 2000
	kube, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := NewCountingProxy(admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	s := &Sim{Env: env, Admin: admin, Kube: kube, Proxy: proxy, Dialer: &simnet.Dialer{}, Runner: NewFakeRunner(), Bin: bin}
	t.Cleanup(s.Runner.Close)

	// kwok talks to the API server directly (its traffic is not the
	// controller's) as a member of system:masters.
	user, err := env.AddUser(envtest.User{Name: "kwok", Groups: []string{"system:masters"}}, admin)
	if err != nil {
		t.Fatalf("adding kwok's user: %v", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kwok.kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "kwok.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logf.Close() })
	// No --server-address and no --node-port: kwok opens no listener.
	s.kwok, err = claimbench.Start("kwok", filepath.Join(bin, "kwok"), []string{
		"--kubeconfig", kubeconfig,
		"--config", filepath.Join(bin, "kwok-stages.yaml"),
		"--manage-all-nodes",
		"--cidr", PodCIDR.String(),
		"--node-ip", NodeIP,
	}, []string{"HOME=" + dir}, logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.kwok.Stop(); err != nil {
			t.Errorf("stopping kwok: %v", err)
		}
		if t.Failed() {
			tail, _ := os.ReadFile(logf.Name())
			t.Logf("kwok's log (last 3000 bytes):\n%s", lastBytes(tail, 3000))
		}
	})
	return s
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// NodeName is the name of simulated node i.
func NodeName(i int) string { return fmt.Sprintf("kwok-node-%03d", i) }

// Nodes returns the simulated nodes made so far.
func (s *Sim) Nodes() []string { return s.nodes }

// AddNodes makes simulated nodes until there are n, and waits until kwok
// has made them all Ready.
func (s *Sim) AddNodes(ctx context.Context, n int) error {
	if n > 250 {
		return fmt.Errorf("adding nodes: %d nodes do not fit one /24 each in %s", n, PodCIDR)
	}
	for i := len(s.nodes) + 1; i <= n; i++ {
		cidr := fmt.Sprintf("10.244.%d.0/24", i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        NodeName(i),
				Labels:      map[string]string{"type": "kwok", corev1.LabelHostname: NodeName(i)},
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			},
			Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
			Status: corev1.NodeStatus{
				Allocatable: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("250"),
				},
				Capacity: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("250"),
				},
			},
		}
		if _, err := s.Kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating simulated node %s: %w", node.Name, err)
		}
		s.nodes = append(s.nodes, node.Name)
	}
	if err := poll(ctx, 2*time.Minute, fmt.Sprintf("%d simulated nodes Ready", n), func() error {
		list, err := s.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
		if err != nil {
			return err
		}
		ready := 0
		for _, node := range list.Items {
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready < n {
			if exited, err := s.kwok.Exited(); exited {
				return fmt.Errorf("kwok exited: %w", err)
			}
			return fmt.Errorf("%d of %d Ready", ready, n)
		}
		return nil
	}); err != nil {
		return err
	}
	return s.untaintNodes(ctx)
}

// untaintNodes stands in for the node lifecycle controller (envtest runs no
// kube-controller-manager): the API server gives a new node the
// not-ready:NoSchedule taint, and only that controller removes it once the
// node is Ready. Warm pools keep no pods on a node that has it.
func (s *Sim) untaintNodes(ctx context.Context) error {
	for _, name := range s.nodes {
		node, err := s.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading simulated node %s: %w", name, err)
		}
		kept := node.Spec.Taints[:0]
		for _, taint := range node.Spec.Taints {
			if taint.Key != corev1.TaintNodeNotReady {
				kept = append(kept, taint)
			}
		}
		if len(kept) == len(node.Spec.Taints) {
			continue
		}
		node.Spec.Taints = kept
		if _, err := s.Kube.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("removing the not-ready taint of simulated node %s: %w", name, err)
		}
	}
	return nil
}

// poll calls check every 100 ms until it returns nil or timeout passes.
func poll(ctx context.Context, timeout time.Duration, what string, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting %s for %s: %w", timeout, what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RunBinder stands in for the scheduler (envtest has none) until ctx ends:
// every pod without a node is bound to the simulated nodes in turn. Our
// warm pods name their node themselves; agent-sandbox's pods need this.
func (s *Sim) RunBinder(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(s.Kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", "").String()
	}))
	queue := make(chan *corev1.Pod, 4096)
	_, _ = factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok && pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil {
				queue <- pod
			}
		},
	})
	factory.Start(ctx.Done())
	var next atomic.Int64
	for range 4 {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case pod := <-queue:
					nodes := s.nodes
					if len(nodes) == 0 {
						continue
					}
					node := nodes[int(next.Add(1))%len(nodes)]
					_ = s.Kube.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
						ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
						Target:     corev1.ObjectReference{Kind: "Node", Name: node},
					}, metav1.CreateOptions{})
				}
			}
		}()
	}
}

// MapRunners maps, until ctx ends, every simulated pod address kwok hands
// out (podIP:port) to the fake runner, so that the controller's /claim
// calls land there. Addresses outside PodCIDR are never mapped.
func (s *Sim) MapRunners(ctx context.Context, port int32) error {
	to := s.Runner.Addr()
	factory := informers.NewSharedInformerFactory(s.Kube, 0)
	update := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Status.PodIP == "" {
			return
		}
		ip, err := netip.ParseAddr(pod.Status.PodIP)
		if err != nil || !PodCIDR.Contains(ip) {
			return
		}
		_ = s.Dialer.Map(netip.AddrPortFrom(ip, uint16(port)), to)
	}
	_, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, obj any) { update(obj) },
	})
	if err != nil {
		return fmt.Errorf("watching pods for their simulated addresses: %w", err)
	}
	factory.Start(ctx.Done())
	return nil
}

// FakeRunner is the stand-in of every simulated pod's runner: it answers
// POST /claim (and probes) with 200 and counts the claims.
type FakeRunner struct {
	srv    *httptest.Server
	claims atomic.Int64
	mu     sync.Mutex
	hosts  map[string]int // Host header (the simulated pod address) -> claims
}

// NewFakeRunner starts a fake runner on 127.0.0.1.
func NewFakeRunner() *FakeRunner {
	f := &FakeRunner{hosts: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/claim" {
			f.claims.Add(1)
			f.mu.Lock()
			f.hosts[r.Host]++
			f.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	}))
	return f
}

// Addr is the fake runner's loopback address.
func (f *FakeRunner) Addr() netip.AddrPort {
	return netip.MustParseAddrPort(f.srv.Listener.Addr().String())
}

// Claims is how many POST /claim it answered.
func (f *FakeRunner) Claims() int64 { return f.claims.Load() }

// ClaimedTwice returns the simulated addresses claimed more than once.
func (f *FakeRunner) ClaimedTwice() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for h, n := range f.hosts {
		if n > 1 {
			out = append(out, h)
		}
	}
	return out
}

// Close stops it.
func (f *FakeRunner) Close() { f.srv.Close() }
