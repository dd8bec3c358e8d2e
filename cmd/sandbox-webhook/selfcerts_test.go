package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/certs"
	"sandbox.io/injector/internal/testenv"
)

// TestServeSelfManagedCertificates runs the binary's serve with
// --cert-mode=self against a real kube-apiserver: /readyz stays failing until
// the webhook configuration exists, then the Secret is there, the caBundle
// trusts the certificate and /readyz passes.
func TestServeSelfManagedCertificates(t *testing.T) {
	cl := startServeCluster(t)
	c, ns := cl.c, cl.ns
	health := freeAddr(t)
	args := []string{
		"--kubeconfig=" + cl.kubeconfig, "--runner-image=runner.test/runner:v1", "--release-namespace=" + ns,
		"--port=" + fmt.Sprint(testenv.FreePort(t)), "--metrics-bind-address=0", "--health-probe-bind-address=" + health,
		"--cert-mode=self", "--cert-secret=hook-cert", "--webhook-config-name=hooks", "--service-name=hook",
		"--cert-sync-interval=200ms", "--log-level=error",
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := serveInBackground(ctx, args)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	readyz := func() error {
		resp, err := http.Get("http://" + health + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	}
	var sec corev1.Secret
	waitUntil(t, "the certificate Secret", func() error {
		return c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "hook-cert"}, &sec)
	})
	if err := readyz(); err == nil {
		t.Fatal("/readyz passes without a webhook configuration to trust the certificate")
	}
	path := "/mutate-v1-pod"
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "hooks"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "pod.sandbox.io", AdmissionReviewVersions: []string{"v1"},
			SideEffects:       ptr.To(admissionregistrationv1.SideEffectClassNone),
			ClientConfig:      admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: ns, Name: "hook", Path: &path}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"never": "true"}},
		}},
	}
	if err := c.Create(t.Context(), mwc); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "/readyz", readyz)

	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "hook-cert"}, &sec); err != nil {
		t.Fatal(err)
	}
	st, caErr, servingErr := certs.ParseSecret(sec.Data, time.Now())
	if err := errors.Join(caErr, servingErr); err != nil {
		t.Fatal(err)
	}
	if got := st.Serving.Cert.DNSNames; len(got) != 2 || got[0] != "hook.sandbox-system.svc" {
		t.Errorf("serving certificate names %v", got)
	}
	if err := c.Get(t.Context(), client.ObjectKey{Name: "hooks"}, mwc); err != nil {
		t.Fatal(err)
	}
	if !certs.Verifies(certs.ParseLenient(mwc.Webhooks[0].ClientConfig.CABundle), st.Serving.Cert, time.Now()) {
		t.Error("the caBundle does not verify the serving certificate")
	}
}

func waitUntil(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
}
