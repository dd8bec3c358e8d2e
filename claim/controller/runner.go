package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/claimkey"
	"sandbox.io/injector/pool"
	"sandbox.io/injector/runner/api"
)

// runnerPort is the pod's runner port: the container port named
// api.PortName, which the webhook gives the runner of its first wrapped
// container.
func runnerPort(pod *corev1.Pod) (int32, error) {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == api.PortName {
				return p.ContainerPort, nil
			}
		}
	}
	return 0, fmt.Errorf("pod %s/%s has no container port named %s (was it injected?)", pod.Namespace, pod.Name, api.PortName)
}

// handRunner gives the pod's runner to the claimant: POST /claim with the
// pod's claim credential, the digest of the claimant's token and the
// claim's env.
func (r *ClaimReconciler) handRunner(ctx context.Context, sbc *v1alpha1.SandboxClaim, pod *corev1.Pod, port int32, digest string) error {
	cred, err := r.credential(pod)
	if err != nil {
		return err
	}
	req := api.ClaimRequest{Protocol: r.opts.claimProtocol, Claimant: sbc.Namespace + "/" + sbc.Name, TokenSHA256: digest}
	if len(sbc.Spec.Env) > 0 {
		req.Env = make(map[string]string, len(sbc.Spec.Env))
		for _, e := range sbc.Spec.Env {
			req.Env[e.Name] = e.Value
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encoding the claim request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.RunnerTimeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port))) + api.PathClaim
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building the claim request: %w", err)
	}
	hreq.Header.Set("Content-Type", api.ContentTypeJSON)
	hreq.Header.Set(api.TokenHeader, cred)
	resp, err := r.opts.HTTPClient.Do(hreq)
	if err != nil {
		return fmt.Errorf("calling the runner of pod %s: %w", pod.Name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if perr := r.protocolMismatch(pod, resp.StatusCode, msg); perr != nil {
		return perr
	}
	if resp.StatusCode != http.StatusOK {
		var e api.Error
		if json.Unmarshal(msg, &e) == nil && e.Error != "" {
			msg = []byte(e.Error)
		}
		return fmt.Errorf("the runner of pod %s answered %d: %s", pod.Name, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// credential is pod's claim credential, under whichever held claim key the
// webhook made its runner's verifier with.
func (r *ClaimReconciler) credential(pod *corev1.Pod) (string, error) {
	nonce := pod.Annotations[v1alpha1.AnnotationClaimNonce]
	if nonce == "" {
		return "", fmt.Errorf("pod %s has no %s annotation: it was not injected as a pool pod", pod.Name, v1alpha1.AnnotationClaimNonce)
	}
	verifier := pool.ClaimVerifier(pod)
	if verifier == "" {
		// A runner given no verifier on its command line (a release whose
		// runners took another claim protocol): the current key's
		// credential, which it refuses naming its protocol (rollout.go).
		return r.opts.Keys.Keys().Current.Credential(pod.Namespace, nonce), nil
	}
	cred, ok := r.opts.Keys.Credential(pod.Namespace, nonce, verifier)
	if !ok {
		return "", fmt.Errorf("the runner of pod %s was injected under a claim key this controller does not hold (%s)", pod.Name, r.opts.Keys.Keys())
	}
	return cred, nil
}

// keyHeld reports whether the controller holds the claim key pod's runner
// verifier was made with: a pod injected under another key (one rotated
// away, or one this replica has not loaded yet) is left alone. A pod whose
// runner has no verifier on its command line (another claim protocol) is
// not of another key: the claim tries it and lets it go when its runner
// refuses (rollout.go).
func keyHeld(keys *claimkey.Ring, pod *corev1.Pod) bool {
	verifier := pool.ClaimVerifier(pod)
	if verifier == "" {
		return true
	}
	_, ok := keys.Credential(pod.Namespace, pod.Annotations[v1alpha1.AnnotationClaimNonce], verifier)
	return ok
}
