package claim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/runner/api"
	runnerclient "sandbox.io/injector/runner/client"
)

// ErrNotClaimed means a pod is not a claimed sandbox of a pool.
var ErrNotClaimed = errors.New("not a claimed sandbox")

// Sandbox is a claimed pod with its runner.
type Sandbox struct {
	// Pod, Namespace and Node locate the sandbox; Pool is its pool.
	Pod, Namespace, Node, Pool string
	// PodIP is the pod's IP.
	PodIP string
	// Address is the runner's base URL for Transport: http://IP:PORT, or
	// the API server's pods/NAME:PORT/proxy URL.
	Address string
	// Transport is how Runner reaches the sandbox.
	Transport Transport
	// Token is the claimant's token, the only one the runner accepts now.
	Token string
	// Origin is v1alpha1.OriginWarm (adopted from the pool) or
	// v1alpha1.OriginCold (created because nothing was claimable).
	Origin string
	// Claimant is who claimed it.
	Claimant string
	// Timings of the claim (zero for a sandbox from Open).
	Timings Timings
	// Lost counts the pods other claimers took first during the claim;
	// Skipped counts candidates whose runner did not answer or refused.
	Lost, Skipped int

	runner *runnerclient.Client
}

// Runner returns the client of the sandbox's runner, holding its token.
func (s *Sandbox) Runner() *runnerclient.Client { return s.runner }

// Exec runs a command in the sandbox, copying its output to stdout and
// stderr as it arrives (either may be nil), and returns its result.
func (s *Sandbox) Exec(ctx context.Context, req api.ExecuteRequest, stdout, stderr io.Writer) (*api.ExecuteResult, error) {
	res, err := s.runner.ExecuteStream(ctx, req, stdout, stderr)
	if err != nil {
		return nil, fmt.Errorf("executing in sandbox %s/%s: %w", s.Namespace, s.Pod, err)
	}
	return res, nil
}

// CopyTo writes r to path (relative to the runner's work directory) in the
// sandbox; mode 0 means 0644.
func (s *Sandbox) CopyTo(ctx context.Context, r io.Reader, path string, mode uint32) error {
	if err := s.runner.PutFile(ctx, path, r, mode); err != nil {
		return fmt.Errorf("copying to %s in sandbox %s/%s: %w", path, s.Namespace, s.Pod, err)
	}
	return nil
}

// CopyFrom writes the sandbox's file path to w.
func (s *Sandbox) CopyFrom(ctx context.Context, path string, w io.Writer) error {
	rc, err := s.runner.GetFile(ctx, path)
	if err != nil {
		return fmt.Errorf("copying %s from sandbox %s/%s: %w", path, s.Namespace, s.Pod, err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("copying %s from sandbox %s/%s: %w", path, s.Namespace, s.Pod, err)
	}
	return nil
}

// RunnerPort returns the number of the pod's container port named
// RunnerPortName.
func RunnerPort(pod *corev1.Pod) (int32, error) {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == RunnerPortName {
				return p.ContainerPort, nil
			}
		}
	}
	return 0, fmt.Errorf("pod %s/%s has no container port named %s (was it injected?)", pod.Namespace, pod.Name, RunnerPortName)
}

// runnerFor builds a client of pod's runner over t, holding token.
func (c *Claimer) runnerFor(pod *corev1.Pod, t Transport, token string) (*runnerclient.Client, string, error) {
	port, err := RunnerPort(pod)
	if err != nil {
		return nil, "", err
	}
	switch t {
	case TransportProxy:
		u, _, err := rest.DefaultServerUrlFor(c.rest)
		if err != nil {
			return nil, "", fmt.Errorf("reading the API server address: %w", err)
		}
		addr := u.JoinPath("api", "v1", "namespaces", pod.Namespace, "pods", pod.Name+":"+strconv.Itoa(int(port)), "proxy").String()
		rc := runnerclient.New(addr, token, c.proxy)
		rc.ViaProxy = true
		return rc, addr, nil
	default:
		if pod.Status.PodIP == "" {
			return nil, "", fmt.Errorf("pod %s/%s has no IP yet", pod.Namespace, pod.Name)
		}
		addr := "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port)))
		return runnerclient.New(addr, token, c.cfg.HTTPClient), addr, nil
	}
}

// Open returns a sandbox claimed earlier (by any claimer): its address and
// the claimant token from ClaimSecretName. t "" means Config.Transport.
func (c *Claimer) Open(ctx context.Context, namespace, podName string, t Transport) (*Sandbox, error) {
	if t == "" {
		t = c.cfg.Transport
	}
	if _, err := ParseTransport(string(t)); err != nil {
		return nil, fmt.Errorf("opening sandbox %s/%s: %w", namespace, podName, err)
	}
	pod, err := c.claimedPod(ctx, namespace, podName)
	if err != nil {
		return nil, err
	}
	name := ClaimSecretName(pod.Name)
	s, err := c.kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading the claimant token of sandbox %s/%s from Secret %s: %w", namespace, podName, name, err)
	}
	if !ownedBy(s, pod) {
		return nil, fmt.Errorf("reading the claimant token of sandbox %s/%s: Secret %s belongs to another pod of that name", namespace, podName, name)
	}
	token := string(s.Data[v1alpha1.TokenSecretKey])
	rc, addr, err := c.runnerFor(pod, t, token)
	if err != nil {
		return nil, fmt.Errorf("opening sandbox %s/%s: %w", namespace, podName, err)
	}
	return &Sandbox{
		Pod:       pod.Name,
		Namespace: pod.Namespace,
		Node:      pod.Spec.NodeName,
		Pool:      pod.Labels[v1alpha1.LabelPool],
		PodIP:     pod.Status.PodIP,
		Address:   addr,
		Transport: t,
		Token:     token,
		Origin:    pod.Labels[v1alpha1.LabelOrigin],
		Claimant:  pod.Annotations[v1alpha1.AnnotationClaimedBy],
		runner:    rc,
	}, nil
}

func ownedBy(s *corev1.Secret, pod *corev1.Pod) bool {
	for _, o := range s.OwnerReferences {
		if o.Kind == "Pod" && o.UID == pod.UID {
			return true
		}
	}
	return false
}

func (c *Claimer) claimedPod(ctx context.Context, namespace, podName string) (*corev1.Pod, error) {
	pod, err := c.kube.CoreV1().Pods(namespace).Get(ctx, podName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("getting sandbox %s/%s: %w", namespace, podName, err)
	}
	if pod.Labels[v1alpha1.LabelPool] == "" || pod.Labels[v1alpha1.LabelState] != v1alpha1.StateClaimed {
		return nil, fmt.Errorf("pod %s/%s (pool %q, state %q): %w", namespace, podName,
			pod.Labels[v1alpha1.LabelPool], pod.Labels[v1alpha1.LabelState], ErrNotClaimed)
	}
	return pod, nil
}

// Release ends a sandbox: it deletes the claimed pod and its token Secret
// (which the pod owns, so the garbage collector would delete it too). The
// node agent then refills the pool. Only claimed pool pods are released.
func (c *Claimer) Release(ctx context.Context, namespace, podName string) error {
	pod, err := c.claimedPod(ctx, namespace, podName)
	if err != nil {
		return err
	}
	if err := c.deletePod(ctx, pod); err != nil {
		return fmt.Errorf("releasing sandbox: %w", err)
	}
	err = c.kube.CoreV1().Secrets(namespace).Delete(ctx, ClaimSecretName(podName), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("releasing sandbox %s/%s: deleting its token Secret: %w", namespace, podName, err)
	}
	return nil
}

// Pools lists the SandboxPools of namespace ("" for all namespaces).
func (c *Claimer) Pools(ctx context.Context, namespace string) ([]v1alpha1.SandboxPool, error) {
	var l v1alpha1.SandboxPoolList
	req := c.pools.Get().Resource("sandboxpools")
	if namespace != "" {
		req = req.Namespace(namespace)
	}
	if err := req.Do(ctx).Into(&l); err != nil {
		return nil, fmt.Errorf("listing sandbox pools: %w", err)
	}
	return l.Items, nil
}
