package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// settings of the cluster under test, defaulted like e2e/cluster/lib.sh.
type settings struct {
	kubeconfig  string
	podCIDR     string
	serviceCIDR string
	bridge      string
	registry    string
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func clusterSettings() settings {
	nodeIP := env("SANDBOX_CLUSTER_NODE_IP", "10.250.0.1")
	// Tests run in e2e/, so the repository root is the parent directory.
	kubeconfig := env("KUBECONFIG", filepath.Join(env("SANDBOX_CLUSTER_DIR", filepath.Join("..", "_out", "cluster")), "kubeconfig"))
	if abs, err := filepath.Abs(kubeconfig); err == nil {
		kubeconfig = abs
	}
	return settings{
		kubeconfig:  kubeconfig,
		podCIDR:     env("SANDBOX_CLUSTER_POD_CIDR", "10.244.0.0/24"),
		serviceCIDR: env("SANDBOX_CLUSTER_SERVICE_CIDR", "10.96.0.0/24"),
		bridge:      env("SANDBOX_CLUSTER_BRIDGE", "sbx0"),
		registry:    nodeIP + ":5000",
	}
}

// requireCluster skips the test, loudly, unless an e2e run was asked for.
func requireCluster(t *testing.T) settings {
	t.Helper()
	s := clusterSettings()
	if os.Getenv("SANDBOX_E2E") != "1" {
		t.Skip("SKIPPING END-TO-END TEST: SANDBOX_E2E is not 1; run `make e2e` " +
			"(or make cluster-up, then SANDBOX_E2E=1 go test ./e2e/...)")
	}
	if _, err := os.Stat(s.kubeconfig); err != nil {
		t.Fatalf("SANDBOX_E2E=1 but the cluster's kubeconfig is missing (run make cluster-up): %v", err)
	}
	return s
}

func client(t *testing.T, s settings) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		t.Fatalf("loading kubeconfig %s: %v", s.kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// externalInterfaces lists the interfaces traffic could leave the machine
// by, like external_ifaces in e2e/cluster/lib.sh.
func externalInterfaces(t *testing.T, bridge string) []string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range ifs {
		if i.Name == "lo" || i.Name == bridge || strings.HasPrefix(i.Name, "veth") || strings.HasPrefix(i.Name, "cni") {
			continue
		}
		out = append(out, i.Name)
	}
	return out
}

// TestNetworkGuard checks that, while the cluster runs, the mangle
// POSTROUTING chain drops pod-range and Service-range packets on every
// external interface.
func TestNetworkGuard(t *testing.T) {
	s := requireCluster(t)
	out, err := exec.CommandContext(t.Context(), "iptables", "-w", "-t", "mangle", "-S", "POSTROUTING").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -t mangle -S POSTROUTING: %v\n%s", err, out)
	}
	rules := string(out)
	ifaces := externalInterfaces(t, s.bridge)
	if len(ifaces) == 0 {
		t.Fatal("no external interface found; the guard cannot be checked")
	}
	for _, ifc := range ifaces {
		for _, match := range []string{"-s " + s.podCIDR, "-d " + s.podCIDR, "-d " + s.serviceCIDR} {
			want := fmt.Sprintf("-A POSTROUTING %s -o %s", match, ifc)
			found := false
			for _, line := range strings.Split(rules, "\n") {
				if strings.HasPrefix(line, want) && strings.HasSuffix(line, "-j DROP") {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("no DROP rule %q... in mangle POSTROUTING:\n%s", want, rules)
			}
		}
	}
}

// newNamespace creates a namespace that is deleted when the test ends, and
// waits for its default ServiceAccount (pods need it; it is made
// asynchronously).
func newNamespace(t *testing.T, cs kubernetes.Interface) *corev1.Namespace {
	t.Helper()
	ctx := t.Context()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context is done during cleanup.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
	})
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("waiting for the default ServiceAccount of %s: %v", ns.Name, err)
	}
	return ns
}

// runPod creates a pod in a fresh namespace, waits until its container has
// printed wantLog, and returns the log.
func runPod(t *testing.T, cs kubernetes.Interface, pod *corev1.Pod, wantLog string) string {
	t.Helper()
	ctx := t.Context()
	ns := newNamespace(t, cs)
	pod.Namespace = ns.Name
	if _, err := cs.CoreV1().Pods(ns.Name).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var logs []byte
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns.Name).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if p.Status.Phase != corev1.PodRunning {
			return false, nil
		}
		logs, err = cs.CoreV1().Pods(ns.Name).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		return err == nil && bytes.Contains(logs, []byte(wantLog)), nil
	})
	if err != nil {
		p, _ := cs.CoreV1().Pods(ns.Name).Get(ctx, pod.Name, metav1.GetOptions{})
		t.Fatalf("pod %s/%s did not run and print %q: %v\nstatus: %+v\nlogs: %s", ns.Name, pod.Name, wantLog, err, p.Status, logs)
	}
	return string(logs)
}

// TestBusyboxPodRuns is the smoke test: a pod from the local registry's
// busybox image is scheduled, gets its sandbox (our pause image) and network,
// and runs its command.
func TestBusyboxPodRuns(t *testing.T) {
	s := requireCluster(t)
	cs := client(t, s)
	var zero int64
	runPod(t, cs, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busybox"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name:    "sh",
				Image:   s.registry + "/busybox:e2e",
				Command: []string{"sh", "-c", "echo from-busybox $(id -u); exec sleep 3600"},
			}},
		},
	}, "from-busybox 0")
}

// TestHelloImageCmd checks that a pod without command runs the image's
// ENTRYPOINT with its CMD, as stored in the registry: what the webhook will
// have to read.
func TestHelloImageCmd(t *testing.T) {
	s := requireCluster(t)
	cs := client(t, s)
	var zero int64
	runPod(t, cs, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			Containers:                    []corev1.Container{{Name: "hello", Image: s.registry + "/hello:e2e"}},
		},
	}, `{"args":["hello","from","the","image","cmd"]}`)
}

// TestForeignRegistryStaysLocal checks that containerd resolves an image of
// any registry but the local one to a closed loopback port, so that no pull
// ever leaves the machine. (.invalid is a reserved, never-resolvable name.)
func TestForeignRegistryStaysLocal(t *testing.T) {
	s := requireCluster(t)
	cs := client(t, s)
	ctx := t.Context()
	ns := newNamespace(t, cs)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "foreign"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/nothing:1"}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns.Name).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		evs, err := cs.CoreV1().Events(ns.Name).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=foreign"})
		if err != nil {
			return false, nil
		}
		for _, ev := range evs.Items {
			if ev.Reason == "Failed" {
				last = ev.Message
				if strings.Contains(ev.Message, "127.0.0.1:9") {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no pull failure naming the loopback sink 127.0.0.1:9: %v (last failure: %q)", err, last)
	}
}

// TestServiceReachableFromHost checks the path the API server takes to a
// webhook: from the host to a ClusterIP Service, through kube-proxy's
// iptables rules, to a pod. It waits on the Service itself (a Service may
// refuse connections for a moment after its pod is Ready).
func TestServiceReachableFromHost(t *testing.T) {
	s := requireCluster(t)
	cs := client(t, s)
	ctx := t.Context()
	ns := newNamespace(t, cs)
	labels := map[string]string{"app": "httpd"}
	var zero int64
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "httpd", Labels: labels},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name:    "httpd",
				Image:   s.registry + "/busybox:e2e",
				Command: []string{"sh", "-c", "mkdir -p /www && echo served-by-pod > /www/index.html && exec httpd -f -p 8080 -h /www"},
				Ports:   []corev1.ContainerPort{{ContainerPort: 8080}},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns.Name).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := cs.CoreV1().Services(ns.Name).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "httpd"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP(svc.Spec.ClusterIP)
	_, svcNet, err := net.ParseCIDR(s.serviceCIDR)
	if err != nil {
		t.Fatal(err)
	}
	if ip == nil || !svcNet.Contains(ip) {
		// Never send anything to an address outside the cluster's ranges.
		t.Fatalf("ClusterIP %q is not in the Service range %s", svc.Spec.ClusterIP, s.serviceCIDR)
	}
	url := "http://" + net.JoinHostPort(ip.String(), "80") + "/"
	httpc := &http.Client{Timeout: 2 * time.Second}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := httpc.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		last = fmt.Sprintf("%s %q %v", resp.Status, b, err)
		return resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == "served-by-pod", nil
	})
	if err != nil {
		t.Fatalf("GET %s never answered from the pod: %v (last: %s)", url, err, last)
	}
}

// TestPodReachesRegistry checks that a pod reaches the local registry at the
// node address, as the webhook does when it reads an image's config.
func TestPodReachesRegistry(t *testing.T) {
	s := requireCluster(t)
	cs := client(t, s)
	host, port, err := net.SplitHostPort(s.registry)
	if err != nil {
		t.Fatal(err)
	}
	var zero int64
	// Debian's busybox wget crashes; nc speaks the HTTP request instead.
	script := fmt.Sprintf(`printf 'GET /v2/ HTTP/1.0\r\nHost: %s\r\n\r\n' | nc %s %s | head -1; exec sleep 3600`, s.registry, host, port)
	logs := runPod(t, cs, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "registry-client"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name:    "nc",
				Image:   s.registry + "/busybox:e2e",
				Command: []string{"sh", "-c", script},
			}},
		},
	}, "HTTP/1.")
	if !strings.Contains(logs, " 200 ") {
		t.Errorf("registry answered %q, want status 200", logs)
	}
}

// TestImageVolume checks that the node mounts an image as a read-only
// volume whose static binary can run (the zero-copy form of injection):
// the hello image is mounted into a busybox container and run from there.
func TestImageVolume(t *testing.T) {
	s := requireCluster(t)
	cs := client(t, s)
	var zero int64
	runPod(t, cs, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "image-volume"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			Volumes: []corev1.Volume{{
				Name: "hello",
				VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{
					Reference:  s.registry + "/hello:e2e",
					PullPolicy: corev1.PullIfNotPresent,
				}},
			}},
			Containers: []corev1.Container{{
				Name:         "sh",
				Image:        s.registry + "/busybox:e2e",
				Command:      []string{"sh", "-c", "touch /img/x 2>/dev/null || echo read-only; exec /img/hello from-volume"},
				VolumeMounts: []corev1.VolumeMount{{Name: "hello", MountPath: "/img"}},
			}},
		},
	}, `read-only`+"\n"+`{"args":["from-volume"]}`)
}
