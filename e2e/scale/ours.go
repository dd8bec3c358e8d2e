package scale

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"sandbox.io/injector/agent"
	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
	"sandbox.io/injector/claim/controller"
	"sandbox.io/injector/internal/claimkey"
	"sandbox.io/injector/internal/kubescheme"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner/api"
)

// DialFunc is the dialer the controller must reach runners with.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// OursController adds our claim controller (package claim/controller) to
// mgr, reaching runners only through dial (the simulation's loopback
// stand-ins): its HTTP client has no other dialer and no proxy.
var OursController = func(mgr manager.Manager, dial DialFunc) error {
	hc := &http.Client{Transport: &http.Transport{DialContext: dial, Proxy: nil, MaxIdleConnsPerHost: 4}}
	return controller.Setup(mgr, controller.Options{Keys: simKeys, HTTPClient: hc})
}

// simKeys are the claim keys of the simulation: the controller's, and the
// ones PreparePod injects under.
var simKeys = func() *claimkey.Ring {
	key, err := claimkey.NewKey()
	if err != nil {
		panic(err)
	}
	return claimkey.NewRing(claimkey.Keys{Current: key})
}()

// PreparePod turns a warm pod the harness makes for a node without a real
// agent into what that node's agent and the webhook (which envtest does not
// run) would have made. The default adds the runner's port, a claim nonce
// and the runner's claim verifier in its command; the controller's wiring
// replaces it when the controller checks more.
var PreparePod = func(pod *corev1.Pod) {
	c := &pod.Spec.Containers[0]
	c.Ports = append(c.Ports, corev1.ContainerPort{Name: api.PortName, ContainerPort: SimRunnerPort})
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	pod.Annotations[v1alpha1.AnnotationClaimNonce] = hex.EncodeToString(nonce)
	c.Command = []string{"/.sandbox/runner", "run", pool.ClaimVerifierFlag + simKeys.Verifier(pod.Namespace, pod.Annotations[v1alpha1.AnnotationClaimNonce])}
}

// SimRunnerPort is the runner port of simulated warm pods.
const SimRunnerPort int32 = api.DefaultPort

// RealAgents is how many nodes run a real node agent (agent.SetupPools,
// in-process); the harness stands in for the others' agents. 0 until the
// simulation runs the webhook too: envtest runs none, and a real agent's
// pods without the webhook's claim nonce and runner port are never
// claimable.
var RealAgents = 0

func init() {
	sides = append([]side{{name: "ours", setUp: setUpOurs}}, sides...)
}

var errNotWired = errors.New("our claim controller is not wired into the simulation (scale.OursController is nil)")

func setUpOurs(ctx context.Context, t *testing.T, s *Sim) (pools, error) {
	if OursController == nil {
		return nil, errNotWired
	}
	scheme, err := kubescheme.New()
	if err != nil {
		return nil, err
	}
	// The controller talks through the counting proxy; nothing else does.
	cfg := s.Proxy.Config(s.Admin)
	cfg.QPS, cfg.Burst = 1000, 2000
	mgr, err := manager.New(cfg, manager.Options{
		Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, fmt.Errorf("creating the controller's manager: %w", err)
	}
	if err := OursController(mgr, s.Dialer.DialContext); err != nil {
		return nil, fmt.Errorf("setting up our claim controller: %w", err)
	}
	startManager(ctx, t, mgr, "claim controller")
	if err := s.MapRunners(ctx, SimRunnerPort); err != nil {
		return nil, err
	}
	c, err := client.New(s.Admin, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	ns := "bench"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	p := &v1alpha1.SandboxPool{
		ObjectMeta: metav1.ObjectMeta{Name: "busybox", Namespace: ns},
		Spec: v1alpha1.SandboxPoolSpec{
			Template:    v1alpha1.SandboxTemplate{Image: "busybox", Command: []string{"sleep", "3600"}},
			PodsPerNode: ptr.To(int32(0)),
		},
	}
	if err := c.Create(ctx, p); err != nil {
		return nil, fmt.Errorf("creating pool %s/%s: %w", ns, p.Name, err)
	}
	cl, err := claim.New(s.Admin, claim.Config{})
	if err != nil {
		return nil, err
	}
	o := &oursPools{s: s, c: c, cl: cl, p: p}
	for i := range min(RealAgents, len(s.Nodes())) {
		node := s.Nodes()[i]
		amgr, err := manager.New(s.Admin, manager.Options{
			Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		})
		if err != nil {
			return nil, err
		}
		if _, err := agent.SetupPools(amgr, agent.PoolConfig{NodeName: node}); err != nil {
			return nil, fmt.Errorf("setting up the agent of %s: %w", node, err)
		}
		startManager(ctx, t, amgr, "agent of "+node)
		o.agents = append(o.agents, node)
	}
	return o, nil
}

func startManager(ctx context.Context, t *testing.T, mgr manager.Manager, what string) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", what, err)
		}
	})
}

// oursPools sizes our pool: real agents keep their nodes' warm pods, the
// harness keeps the other nodes' as their agents would.
type oursPools struct {
	s      *Sim
	c      client.Client
	cl     *claim.Client
	p      *v1alpha1.SandboxPool
	agents []string
}

func (o *oursPools) Size(ctx context.Context, n int) error {
	nodes := o.s.Nodes()
	perNode := int32((n + len(nodes) - 1) / len(nodes))
	if o.p.Spec.WarmPodsPerNode() != perNode {
		// A merge patch: the controller writes the pool's status meanwhile.
		patch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"spec":{"podsPerNode":%d}}`, perNode))
		if err := o.c.Patch(ctx, o.p, patch); err != nil {
			return fmt.Errorf("setting podsPerNode of %s/%s to %d: %w", o.p.Namespace, o.p.Name, perNode, err)
		}
	}
	real := map[string]bool{}
	for _, a := range o.agents {
		real[a] = true
	}
	return poll(ctx, 4*time.Minute, fmt.Sprintf("%d warm pods of %s/%s Ready", int(perNode)*len(nodes), o.p.Namespace, o.p.Name), func() error {
		var list corev1.PodList
		if err := o.c.List(ctx, &list, client.InNamespace(o.p.Namespace), client.MatchingLabelsSelector{Selector: pool.MadeWarmSelector(o.p.Name)}); err != nil {
			return err
		}
		have, ready := map[string]int{}, 0
		for i := range list.Items {
			pod := &list.Items[i]
			if pod.DeletionTimestamp != nil || pool.State(pod) != v1alpha1.StateWarm {
				continue
			}
			have[pod.Spec.NodeName]++
			if pool.IsReady(pod) && pod.Status.PodIP != "" {
				ready++
			}
		}
		for _, node := range nodes {
			for range max(0, int(perNode)-have[node]) {
				if real[node] {
					break
				}
				pod := pool.WarmPod(o.p, node)
				PreparePod(pod)
				if err := o.c.Create(ctx, pod); err != nil {
					return fmt.Errorf("creating a warm pod on %s: %w", node, err)
				}
			}
		}
		if want := int(perNode) * len(nodes); ready < want {
			return fmt.Errorf("%d of %d Ready", ready, want)
		}
		return nil
	})
}

func (o *oursPools) Claim(ctx context.Context) (time.Duration, error) {
	sb, err := o.cl.Claim(ctx, claim.Request{Namespace: o.p.Namespace, Pool: o.p.Name, NoCold: true, Timeout: time.Minute})
	if err != nil {
		return 0, err
	}
	return sb.Duration, nil
}
