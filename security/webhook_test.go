package security

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sandbox.io/injector/webhook"
	"sandbox.io/injector/webhook/entrypoint"
)

// countingListener accepts connections on loopback and counts them: a
// stand-in for any internal service a pod author would like the webhook
// to probe.
func countingListener(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), &n
}

// admit runs the real admission handler on a pod whose container has no
// command, so that the webhook looks its image up, and returns the answer.
func admit(t *testing.T, resolver *entrypoint.Resolver, image, mode string) admission.Response {
	t.Helper()
	c := fake.NewClientBuilder().WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}).Build()
	h, err := webhook.NewHandler(webhook.Config{RunnerImage: "runner.test/sandbox-runner:v1"},
		webhook.HandlerOptions{Namespaces: c, APIReader: c, Resolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	raw := fmt.Sprintf(`{"metadata":{"name":"p","annotations":{"sandbox.io/inject":"true","sandbox.io/mode":%q}},
"spec":{"containers":[{"name":"app","image":%q}]}}`, mode, image)
	return h.Handle(t.Context(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID("00000000-0000-4000-8000-000000000001"),
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Namespace: "team",
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: []byte(raw)},
	}})
}

// answerText is everything a pod author reads of an admission answer.
func answerText(resp admission.Response) string {
	text := strings.Join(resp.Warnings, "\n")
	if resp.Result != nil {
		text += "\n" + resp.Result.Message
	}
	// The handler answers with the encoded patch; its values are read
	// decoded, as the pod author sees them in the mutated pod.
	var ops []jsonpatch.Operation
	if err := json.Unmarshal(resp.Patch, &ops); len(resp.Patch) > 0 && err != nil {
		text += "\nundecodable patch: " + string(resp.Patch)
	}
	for _, p := range ops {
		text += fmt.Sprintf("\n%v", p.Value)
	}
	return text
}

// TestWebhookAttacks replays pod authors who use the webhook's image
// lookups to reach its own network or to read what internal services say.
func TestWebhookAttacks(t *testing.T) {
	attack(t, "webhook", "image lookup connects to an internal loopback port", func(t *testing.T) error {
		addr, accepted := countingListener(t)
		for _, mode := range []string{"server", "wrap"} {
			admit(t, entrypoint.NewResolver(entrypoint.Config{}), addr+"/probe:v1", mode)
		}
		if n := accepted.Load(); n != 0 {
			return fmt.Errorf("the webhook connected to %s %d times", addr, n)
		}
		return nil
	})

	attack(t, "webhook", "image lookup through a name that resolves to an internal address", func(t *testing.T) error {
		addr, accepted := countingListener(t)
		_, port, _ := net.SplitHostPort(addr)
		// Only the literal address is allowed; another name for it is
		// judged by the address it resolves to when connecting.
		r := entrypoint.NewResolver(entrypoint.Config{Insecure: []string{addr}})
		admit(t, r, "localhost:"+port+"/probe:v1", "server")
		if n := accepted.Load(); n != 0 {
			return fmt.Errorf("the webhook connected through localhost %d times", n)
		}
		return nil
	})

	attack(t, "webhook", "image lookup reaches a cloud metadata address", func(t *testing.T) error {
		// Even with every private address allowed and the address listed.
		// Judged by the policy's Check (the hook the lookups' dialer calls
		// on every connect, proven above on loopback), so that no packet
		// goes towards a metadata service even if the defence regressed.
		p := entrypoint.AddressPolicy{AllowPrivate: true, AllowedHosts: []string{"169.254.169.254", "169.254.169.254:80", "100.100.100.200"}}
		for _, addr := range []string{"169.254.169.254:443", "169.254.169.254:80", "[fe80::a9fe:a9fe]:80",
			"[::ffff:169.254.169.254]:80", "[64:ff9b::a9fe:a9fe]:80", "100.100.100.200:443", "[fd00:ec2::254]:80"} {
			if err := p.Check("169.254.169.254:80", addr); err == nil {
				return fmt.Errorf("a connection to %s would be made", addr)
			} else if !errors.Is(err, entrypoint.ErrAddressRefused) {
				return fmt.Errorf("a connection to %s: %w, want %w", addr, err, entrypoint.ErrAddressRefused)
			}
		}
		return nil
	})

	attack(t, "webhook", "admission answer carries a registry's error text", func(t *testing.T) error {
		const secret = "INTERNAL-SERVICE-SAYS-db-password-hunter2"
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, secret, http.StatusForbidden)
		}))
		t.Cleanup(srv.Close)
		host := strings.TrimPrefix(srv.URL, "http://")
		// The registry is allowed: the answer itself must not leak.
		r := entrypoint.NewResolver(entrypoint.Config{Insecure: []string{host}})
		for _, mode := range []string{"server", "wrap"} {
			resp := admit(t, r, host+"/app:v1", mode)
			text := answerText(resp)
			if strings.Contains(text, secret) || strings.Contains(text, "403 Forbidden") {
				return fmt.Errorf("mode %s: the answer repeats the registry: %s", mode, text)
			}
			if !strings.Contains(text, webhook.ErrLookupFailed.Error()) {
				return fmt.Errorf("mode %s: the answer lacks the generic sentence: %s", mode, text)
			}
		}
		return nil
	})
}
