package scale

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sandbox.io/injector/e2e/claimbench"
)

// side is one controller under test: setUp starts it on s and returns a
// pool driver.
type side struct {
	name  string
	setUp func(ctx context.Context, t *testing.T, s *Sim) (pools, error)
}

// pools is what runSide needs from a controller: a warm pool it can size,
// and a claim of it.
type pools interface {
	// Size makes the pool hold n warm pods and waits until they are ready.
	Size(ctx context.Context, n int) error
	Claim(ctx context.Context) (time.Duration, error)
}

// sides are the controllers measured, in order. ours.go adds ours first.
var sides = []side{{name: "agent-sandbox " + agentSandboxVersion, setUp: setUpAgentSandbox}}

const agentSandboxVersion = "v1.0.1"

// agentSandboxPools drives agent-sandbox's controller in the simulation.
type agentSandboxPools struct {
	a    *claimbench.AgentSandbox
	ns   string
	name string
	made bool
}

func setUpAgentSandbox(ctx context.Context, t *testing.T, s *Sim) (pools, error) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "agent-sandbox.kubeconfig")
	if err := os.WriteFile(kubeconfig, s.Proxy.Kubeconfig(), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "agent-sandbox.log"))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = logf.Close() })
	proc, err := claimbench.Start("agent-sandbox-controller", filepath.Join(s.Bin, "agent-sandbox-controller"),
		claimbench.ControllerArgs, []string{"KUBECONFIG=" + kubeconfig}, logf)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := proc.Stop(); err != nil {
			t.Errorf("stopping agent-sandbox's controller: %v", err)
		}
		if t.Failed() {
			tail, _ := os.ReadFile(logf.Name())
			t.Logf("agent-sandbox's log (last 3000 bytes):\n%s", lastBytes(tail, 3000))
		}
	})
	a, err := claimbench.NewAgentSandbox(s.Admin)
	if err != nil {
		return nil, err
	}
	ns := "bench"
	if _, err := s.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	return &agentSandboxPools{a: a, ns: ns, name: "busybox"}, nil
}

// simPodSpec is the warm pods' spec on both sides; kwok never runs it.
func simPodSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "sandbox", Image: "busybox", Command: []string{"sleep", "3600"}}}}
}

func (p *agentSandboxPools) Size(ctx context.Context, n int) error {
	if !p.made {
		if err := p.a.CreatePool(ctx, p.ns, p.name, simPodSpec(), int32(n)); err != nil {
			return err
		}
		p.made = true
	} else if err := p.a.ScalePool(ctx, p.ns, p.name, int32(n)); err != nil {
		return err
	}
	return p.a.WaitReady(ctx, p.ns, p.name, int64(n), 4*time.Minute)
}

func (p *agentSandboxPools) Claim(ctx context.Context) (time.Duration, error) {
	_, d, err := p.a.Claim(ctx, p.ns, p.name, time.Minute)
	return d, err
}
