package inject

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/pool/netpol"
	runnerapi "sandbox.io/injector/runner/api"
)

// TestPoolNetworkPolicy proves the per-pool NetworkPolicy for real, with
// the cluster's kube-router firewall enforcing it. No traffic leaves the
// machine: the only destinations are a pod of the cluster and a listener
// this test opens on the node's own address (on lo, outside the pod and
// Service ranges).
//
//   - A pool with egress denied (the default): its sandbox reaches neither a
//     pod of another namespace nor the node's listener.
//   - The same with the listener in its allow list: it reaches the
//     listener, still not the pod.
//   - A pool with egress allowed reaches both.
//   - Each pool's runner port answers the node (the API server's pod proxy
//     and a claimant on the node come from there) and a pod of the pool's
//     namespace (claims.network.runnerFrom's default), not a pod of another
//     namespace.
func TestPoolNetworkPolicy(t *testing.T) {
	x := requireE2E(t)
	t.Cleanup(func() {
		if err := x.install(); err != nil {
			t.Errorf("going back to the chart without the agent: %v", err)
		}
	})
	x.installPoolAgent(t)
	x.agentPodReady(t, "")

	// The node's listener: the test answers "node" on the node address.
	nodeIP := os.Getenv("SANDBOX_CLUSTER_NODE_IP")
	if nodeIP == "" {
		nodeIP = "10.250.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(nodeIP, "0"))
	if err != nil {
		t.Fatalf("listening on the node address %s: %v", nodeIP, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("node\n")) }), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	nodePort := ln.Addr().(*net.TCPAddr).Port

	// A pod of another namespace, serving on 8080, and a plain pod in the
	// pools' namespace (a claimant there).
	other := x.namespace(t, "netpol-other", nil)
	target := x.listenerPod(t, other, "target")
	ns := x.namespace(t, "netpol", nil)
	neighbour := x.listenerPod(t, ns, "neighbour")

	deny := x.createPool(t, ns, "deny", 1)
	allowList := x.createPool(t, ns, "allowlist", 1, func(p *v1alpha1.SandboxPool) {
		p.Spec.Network.Allow = []v1alpha1.EgressRule{{CIDR: nodeIP + "/32", Ports: []v1alpha1.EgressPort{{Port: int32(nodePort)}}}}
	})
	open := x.createPool(t, ns, "open", 1, func(p *v1alpha1.SandboxPool) { p.Spec.Network.Egress = v1alpha1.EgressAllow })
	for _, p := range []*v1alpha1.SandboxPool{deny, allowList, open} {
		x.waitPoolPolicy(t, p)
	}
	sandboxes := map[string]corev1.Pod{}
	for _, p := range []*v1alpha1.SandboxPool{deny, allowList, open} {
		sandboxes[p.Name] = x.readyPoolPod(t, p)
	}

	targetAddr := net.JoinHostPort(target.Status.PodIP, "8080")
	nodeAddr := net.JoinHostPort(nodeIP, strconv.Itoa(nodePort))
	cases := []struct {
		from, addr string
		reach      bool
	}{
		{"deny", targetAddr, false},
		{"deny", nodeAddr, false},
		{"allowlist", nodeAddr, true},
		{"allowlist", targetAddr, false},
		{"open", targetAddr, true},
		{"open", nodeAddr, true},
	}
	for _, tc := range cases {
		x.expectReach(t, ns, sandboxes[tc.from].Name, pool.ContainerName, tc.addr, tc.reach)
	}

	for name, sb := range sandboxes {
		runner := net.JoinHostPort(sb.Status.PodIP, strconv.Itoa(runnerapi.DefaultPort))
		// From the node (this test): the runner answers its health probe.
		testenv.Eventually(t, time.Minute, "the runner of pool "+name+" answering the node", func() error {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+runner+"/healthz", nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET /healthz: %s", resp.Status)
			}
			return nil
		})
		x.expectReach(t, ns, neighbour.Name, "app", runner, true)
		x.expectReach(t, other, target.Name, "app", runner, false)
	}
}

// readyPoolPod waits for a Ready pod of pool p (whatever the injection
// method) and returns it.
func (x *env) readyPoolPod(t *testing.T, p *v1alpha1.SandboxPool) corev1.Pod {
	t.Helper()
	var found corev1.Pod
	testenv.Eventually(t, 3*time.Minute, "a Ready pod of pool "+p.Name, func() error {
		list, err := x.kube.CoreV1().Pods(p.Namespace).List(t.Context(), metav1.ListOptions{LabelSelector: pool.Selector(p.Name).String()})
		if err != nil {
			return err
		}
		for _, pod := range list.Items {
			if pod.DeletionTimestamp == nil && isReady(&pod) && pod.Status.PodIP != "" {
				found = pod
				return nil
			}
		}
		return fmt.Errorf("%d pods, none Ready", len(list.Items))
	})
	return found
}

// listenerPod runs a busybox pod that serves HTTP on 8080 and waits until
// it is Ready.
func (x *env) listenerPod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	pod := busyboxPod(x, ns, name, nil)
	pod.Spec.Containers[0].Command = []string{"/bin/sh", "-c", "mkdir -p /tmp/www && echo pod > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"}
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1}
	if _, err := x.kube.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
	return x.waitReady(t, ns, name, 2*time.Minute)
}

// waitPoolPolicy waits until the webhook's controller has written the
// pool's NetworkPolicy.
func (x *env) waitPoolPolicy(t *testing.T, p *v1alpha1.SandboxPool) {
	t.Helper()
	testenv.Eventually(t, time.Minute, "the NetworkPolicy of pool "+p.Name, func() error {
		np, err := x.kube.NetworkingV1().NetworkPolicies(p.Namespace).Get(t.Context(), netpol.Name(p.Name), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(np.OwnerReferences) != 1 || np.OwnerReferences[0].UID != p.UID {
			return fmt.Errorf("owner references %+v, want the pool", np.OwnerReferences)
		}
		if len(np.Spec.PolicyTypes) != 2 || np.Spec.PolicyTypes[1] != networkingv1.PolicyTypeEgress {
			return fmt.Errorf("policy types %v", np.Spec.PolicyTypes)
		}
		return nil
	})
}

// expectReach checks, from container c of pod ns/name (kubectl exec, so
// inside the pod's network), whether a TCP connection to addr opens. A
// policy reaches the firewall a few seconds after it is written, so the
// check polls until it holds, then checks twice more that it stays so.
func (x *env) expectReach(t *testing.T, ns, name, c, addr string, reach bool) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	what := fmt.Sprintf("%s/%s reaching %s: %v", ns, name, addr, reach)
	try := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		// busybox nc: -w bounds the connect; an HTTP/1.0 request makes
		// the server answer and close, so nc ends either way.
		cmd := exec.CommandContext(ctx, filepath.Join(x.root, "bin", "kubectl"), "exec", "-n", ns, name, "-c", c, "--",
			"sh", "-c", `printf 'GET /healthz HTTP/1.0\r\n\r\n' | nc -w 3 "$0" "$1"`, host, port)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			if !bytes.HasPrefix(out.Bytes(), []byte("HTTP/")) {
				return fmt.Errorf("connected but got %q, want an HTTP answer", out.Bytes())
			}
			if !reach {
				return fmt.Errorf("connected, want refused or timed out")
			}
		case errors.As(err, &exit) && exit.ExitCode() == 1:
			if reach {
				return fmt.Errorf("no connection (%s), want one", bytes.TrimSpace(out.Bytes()))
			}
		default:
			return fmt.Errorf("kubectl exec: %w: %s", err, bytes.TrimSpace(out.Bytes()))
		}
		return nil
	}
	testenv.Eventually(t, time.Minute, what, try)
	for range 2 {
		if err := try(); err != nil {
			t.Errorf("%s: held once, then: %v", what, err)
			return
		}
	}
}

// TestComponentNetworkPolicies installs the chart with the node agent, then
// with webhook.networkPolicy and agent.networkPolicy, on the local cluster
// (kube-router enforces them): a pod that reached every port of the webhook
// and agent pods before reaches none of them after (whichever pods are
// Ready after the upgrade, replaced or not), while the API server still
// calls the webhook (pods are still injected) and proxies to the agent's
// metrics, and the kubelet's probes keep both Ready.
func TestComponentNetworkPolicies(t *testing.T) {
	x := requireE2E(t)
	t.Cleanup(func() {
		if err := x.install(); err != nil {
			t.Errorf("going back to the suite's chart: %v", err)
		}
	})
	x.installAgent(t)
	x.agentPodReady(t, "")
	ns := x.namespace(t, "component-np", nil)
	prober := busyboxPod(x, ns, "prober", nil)
	if _, err := x.kube.CoreV1().Pods(ns).Create(t.Context(), prober, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	x.waitReady(t, ns, "prober", 2*time.Minute)
	for _, addr := range x.componentAddrs(t) {
		x.expectReach(t, ns, "prober", "app", addr, true)
	}

	nodeIP, _, _ := net.SplitHostPort(x.registry)
	x.installAgent(t, "--set", "webhook.networkPolicy.enabled=true",
		"--set", "webhook.networkPolicy.apiServerFrom[0].ipBlock.cidr="+nodeIP+"/32",
		"--set", "agent.networkPolicy.enabled=true")
	agent := x.agentPodReady(t, "")
	for _, addr := range x.componentAddrs(t) {
		x.expectReach(t, ns, "prober", "app", addr, false)
	}
	// The API server still reaches the webhook (an opted-in pod is
	// injected) and, through its pod proxy, the agent's metrics.
	if err := x.waitForWebhook(t.Context()); err != nil {
		t.Fatalf("the webhook behind its NetworkPolicy: %v", err)
	}
	if m, err := x.agentMetrics(t.Context(), agent.Name); err != nil || !strings.Contains(m, "sandbox_agent_") {
		t.Errorf("the agent's metrics through the API server's pod proxy: %v", err)
	}
	// The kubelet's probes still pass: the pods are Ready and have not
	// restarted, after the reach checks above took their time.
	pods, err := x.kube.CoreV1().Pods(releaseNS).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component in (webhook,agent)"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		if !isReady(&p) || p.Status.ContainerStatuses[0].RestartCount != 0 {
			t.Errorf("pod %s behind its policy: ready %v, restarts %d", p.Name, isReady(&p), p.Status.ContainerStatuses[0].RestartCount)
		}
	}
}

// componentAddrs are host:port of every container port of the Ready
// webhook and agent pods not being deleted.
func (x *env) componentAddrs(t *testing.T) []string {
	t.Helper()
	pods, err := x.kube.CoreV1().Pods(releaseNS).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component in (webhook,agent)"})
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	components := map[string]bool{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || !isReady(&p) {
			continue
		}
		components[p.Labels["app.kubernetes.io/component"]] = true
		for _, port := range p.Spec.Containers[0].Ports {
			addrs = append(addrs, net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(port.ContainerPort))))
		}
	}
	if !components["webhook"] || !components["agent"] {
		t.Fatalf("Ready pods of %v, want the webhook and the agent", components)
	}
	t.Logf("the webhook's and the agent's ports: %v", addrs)
	return addrs
}
