package claimbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"sandbox.io/injector/claim"
)

// The agent-sandbox resources the benchmark drives, through a dynamic
// client so that the project's root module never imports agent-sandbox's
// Go types (they pin other Kubernetes versions; see tools/peers).
var (
	TemplateGVR = schema.GroupVersionResource{Group: "extensions.agents.x-k8s.io", Version: "v1beta1", Resource: "sandboxtemplates"}
	WarmPoolGVR = schema.GroupVersionResource{Group: "extensions.agents.x-k8s.io", Version: "v1beta1", Resource: "sandboxwarmpools"}
	ClaimGVR    = schema.GroupVersionResource{Group: "extensions.agents.x-k8s.io", Version: "v1beta1", Resource: "sandboxclaims"}
	SandboxGVR  = schema.GroupVersionResource{Group: "agents.x-k8s.io", Version: "v1beta1", Resource: "sandboxes"}
)

// AgentSandbox drives kubernetes-sigs/agent-sandbox's SandboxTemplate,
// SandboxWarmPool and SandboxClaim objects.
type AgentSandbox struct {
	dyn dynamic.Interface
}

// NewAgentSandbox returns a driver using cfg, with the client-side rate
// limit our own claim client has (claim.DefaultQPS, claim.DefaultBurst)
// when cfg sets none: client-go's default (5/s) would throttle a burst of
// agent-sandbox's claims in the harness, not in agent-sandbox.
func NewAgentSandbox(cfg *rest.Config) (*AgentSandbox, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		cfg.QPS, cfg.Burst = claim.DefaultQPS, claim.DefaultBurst
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a dynamic client for agent-sandbox objects: %w", err)
	}
	return &AgentSandbox{dyn: dyn}, nil
}

// CreatePool creates a SandboxTemplate of pod and a SandboxWarmPool of it
// named name, with replicas warm sandboxes.
func (a *AgentSandbox) CreatePool(ctx context.Context, ns, name string, pod corev1.PodSpec, replicas int32) error {
	podSpec, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&pod)
	if err != nil {
		return fmt.Errorf("converting the pod spec of template %s/%s: %w", ns, name, err)
	}
	tmpl := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": TemplateGVR.GroupVersion().String(), "kind": "SandboxTemplate",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec":     map[string]any{"podTemplate": map[string]any{"spec": podSpec}},
	}}
	if _, err := a.dyn.Resource(TemplateGVR).Namespace(ns).Create(ctx, tmpl, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating SandboxTemplate %s/%s: %w", ns, name, err)
	}
	pool := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": WarmPoolGVR.GroupVersion().String(), "kind": "SandboxWarmPool",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"replicas":           int64(replicas),
			"sandboxTemplateRef": map[string]any{"name": name},
		},
	}}
	if _, err := a.dyn.Resource(WarmPoolGVR).Namespace(ns).Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating SandboxWarmPool %s/%s: %w", ns, name, err)
	}
	return nil
}

// ScalePool sets the warm pool's replicas.
func (a *AgentSandbox) ScalePool(ctx context.Context, ns, name string, replicas int32) error {
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	if _, err := a.dyn.Resource(WarmPoolGVR).Namespace(ns).Patch(ctx, name, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("scaling SandboxWarmPool %s/%s to %d: %w", ns, name, replicas, err)
	}
	return nil
}

// ReadyReplicas returns the warm pool's status.readyReplicas.
func (a *AgentSandbox) ReadyReplicas(ctx context.Context, ns, name string) (int64, error) {
	pool, err := a.dyn.Resource(WarmPoolGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("reading SandboxWarmPool %s/%s: %w", ns, name, err)
	}
	n, _, err := unstructured.NestedInt64(pool.Object, "status", "readyReplicas")
	if err != nil {
		return 0, fmt.Errorf("reading status.readyReplicas of SandboxWarmPool %s/%s: %w", ns, name, err)
	}
	return n, nil
}

// WaitReady polls until the warm pool has at least n ready sandboxes.
func (a *AgentSandbox) WaitReady(ctx context.Context, ns, name string, n int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last int64
	for {
		got, err := a.ReadyReplicas(ctx, ns, name)
		if err == nil && got >= n {
			return nil
		}
		last = got
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("waiting %s for %d ready sandboxes in SandboxWarmPool %s/%s: %w", timeout, n, ns, name, err)
			}
			return fmt.Errorf("waiting %s for %d ready sandboxes in SandboxWarmPool %s/%s: %d ready", timeout, n, ns, name, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Claim creates a SandboxClaim of the warm pool and waits until its Ready
// condition is True. It returns the claim's name and the time from just
// before the create call to the watch event that showed it Ready.
func (a *AgentSandbox) Claim(ctx context.Context, ns, pool string, timeout time.Duration) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	claims := a.dyn.Resource(ClaimGVR).Namespace(ns)
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": ClaimGVR.GroupVersion().String(), "kind": "SandboxClaim",
		"metadata": map[string]any{"generateName": pool + "-", "namespace": ns},
		"spec":     map[string]any{"warmPoolRef": map[string]any{"name": pool}},
	}}
	start := time.Now()
	created, err := claims.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return "", 0, fmt.Errorf("creating a SandboxClaim of pool %s/%s: %w", ns, pool, err)
	}
	name := created.GetName()
	if ClaimReady(created) {
		return name, time.Since(start), nil
	}
	// Watching from the create's resourceVersion sees every change after
	// it: no Ready can slip between the create and the watch.
	w, err := claims.Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
		ResourceVersion: created.GetResourceVersion(),
	})
	if err != nil {
		return name, 0, fmt.Errorf("watching SandboxClaim %s/%s: %w", ns, name, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return name, 0, fmt.Errorf("waiting %s for SandboxClaim %s/%s to be Ready: %w", timeout, ns, name, ctx.Err())
		case ev, ok := <-w.ResultChan():
			if !ok {
				return name, 0, fmt.Errorf("watch of SandboxClaim %s/%s closed before it was Ready", ns, name)
			}
			switch ev.Type {
			case watch.Error:
				return name, 0, fmt.Errorf("watching SandboxClaim %s/%s: %v", ns, name, ev.Object)
			case watch.Deleted:
				return name, 0, fmt.Errorf("SandboxClaim %s/%s was deleted before it was Ready", ns, name)
			}
			if u, ok := ev.Object.(*unstructured.Unstructured); ok && ClaimReady(u) {
				return name, time.Since(start), nil
			}
		}
	}
}

// ClaimReady reports whether an agent-sandbox SandboxClaim has the
// condition Ready=True.
func ClaimReady(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Ready" && m["status"] == string(metav1.ConditionTrue) {
			return true
		}
	}
	return false
}

// Release deletes the claim (its sandbox goes with it).
func (a *AgentSandbox) Release(ctx context.Context, ns, name string) error {
	err := a.dyn.Resource(ClaimGVR).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil {
		return fmt.Errorf("deleting SandboxClaim %s/%s: %w", ns, name, err)
	}
	return nil
}

// Process is a program the benchmark started (agent-sandbox's controller,
// kwok), stopped by Stop.
type Process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// ControllerArgs are the flags agent-sandbox's controller runs with here:
// its extensions (SandboxTemplate, SandboxWarmPool, SandboxClaim) on, one
// replica without leader election, no metrics or probe listeners.
var ControllerArgs = []string{
	"--extensions",
	"--leader-elect=false",
	"--metrics-bind-address=0",
	"--health-probe-bind-address=0",
}

// Start runs binary with args and the environment plus env ("K=V"), its
// output going to out, until Stop.
func Start(name, binary string, args, env []string, out io.Writer) (*Process, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("starting %s: %w (build it: make tools-peers)", name, err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that Stop reaches anything it starts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", name, binary, err)
	}
	p := &Process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether the process has ended, and how (an exit with
// status 0 too is an error: "exit status 0").
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		if p.err == nil {
			return true, errors.New("exit status 0")
		}
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, SIGKILL after 10 s, and waits.
func (p *Process) Stop() error {
	if exited, _ := p.Exited(); exited {
		return nil
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	var exit *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exit) {
		return fmt.Errorf("stopping %s: %w", p.name, p.err)
	}
	return nil
}
