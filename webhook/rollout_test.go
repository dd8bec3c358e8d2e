package webhook_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/webhook"
)

// TestRolloutLosesNoAdmission replaces a webhook replica again and again
// while a real API server admits bursts of pods through it. As in a
// cluster, the API server reaches the replicas through one address (a
// stand-in for kube-proxy: a new connection goes to the newest replica, an
// open one stays where it is), over HTTP/1.1 (the API server forces it for
// webhook Services), and keeps idle connections for its next requests. Each
// burst of the API server's idle connections is fired at the instant the
// stopping replica's shutdown delay ends, when a server that closed the
// connections the API server left idle would race the burst's requests on
// them (they failed with EOF or "broken pipe"). Every admission must pass:
// the stopping replica stops only once the API server has closed every
// connection to it (Drain.After with a timeout).
func TestRolloutLosesNoAdmission(t *testing.T) {
	const (
		rollouts = 8
		burst    = 20
		delay    = 300 * time.Millisecond
		timeout  = 20 * time.Second
	)
	env := &envtest.Environment{}
	cfg := testenv.Start(t, env)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit: the bursts are the point
	wio := &env.WebhookInstallOptions
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	proxy := startServiceProxy(t)

	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "rollout-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	url := "https://" + proxy.addr() + "/admit"
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "rollout-"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "rollout.sandbox.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: wio.LocalServingCAData},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns.Name}},
		}},
	}
	if err := c.Create(ctx, mwc); err != nil {
		t.Fatal(err)
	}

	var admitted atomic.Int64
	start := func() *replica {
		r := startReplica(t, wio.LocalServingCertDir, delay, timeout, &admitted)
		proxy.sendTo(r.addr)
		return r
	}
	current := start()
	create := func(name string) error {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		return c.Create(ctx, pod, client.DryRunAll)
	}
	testenv.Eventually(t, 30*time.Second, "the API server to call the webhook", func() error {
		before := admitted.Load()
		if err := create("warmup"); err != nil {
			return err
		}
		if admitted.Load() == before {
			return errors.New("created without the webhook")
		}
		return nil
	})

	var sent, lost atomic.Int64
	var errs sync.Map
	fire := func(round int) {
		var wg sync.WaitGroup
		for i := range burst {
			wg.Go(func() {
				sent.Add(1)
				if err := create(fmt.Sprintf("pod-%d-%d", round, i)); err != nil {
					lost.Add(1)
					errs.Store(err.Error(), true)
				}
			})
		}
		wg.Wait()
	}
	fire(0) // the API server now holds idle connections to the first replica
	var longest time.Duration
	for round := 1; round <= rollouts; round++ {
		old := current
		current = start()
		old.stop() // SIGTERM: the drain begins
		time.Sleep(delay)
		fire(round)
		if err := old.wait(timeout + 10*time.Second); err != nil {
			t.Fatalf("rollout %d: the old replica: %v", round, err)
		}
		took := old.stopped.Sub(old.signalled)
		if took >= timeout {
			t.Errorf("rollout %d: the old replica stopped only at its drain timeout (%s): the API server left a connection open", round, took)
		}
		longest = max(longest, took)
	}
	current.stop()
	errs.Range(func(k, _ any) bool { t.Logf("admission error: %s", k); return true })
	t.Logf("%d rollouts: %d pods created, %d refused, %d admitted by the webhook (with the warm-up); longest drain %s", rollouts, sent.Load(), lost.Load(), admitted.Load(), longest.Round(time.Millisecond))
	if lost.Load() != 0 {
		t.Errorf("%d of %d pod creations failed across %d rollouts; want none", lost.Load(), sent.Load(), rollouts)
	}
}

// replica is one webhook server with its drain, as one webhook pod.
type replica struct {
	addr      string
	signal    context.CancelFunc
	done      chan error
	signalled time.Time
	stopped   time.Time
}

// startReplica serves an admission handler that allows every pod (counting
// it in admitted) on a free loopback port, over HTTP/1.1 only.
func startReplica(t *testing.T, certDir string, delay, timeout time.Duration, admitted *atomic.Int64) *replica {
	t.Helper()
	port := testenv.FreePort(t)
	drain := &webhook.Drain{}
	srv := webhook.NewServer(webhook.ServerOptions{
		Host: "127.0.0.1", Port: port, CertDir: certDir, Drain: drain,
		// What the API server's client does for a webhook Service.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	})
	allow := admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		admitted.Add(1)
		return admission.Allowed("")
	})
	srv.Register("/admit", drain.Wrap(&admission.Webhook{Handler: allow}))
	ctx, signal := context.WithCancel(context.WithoutCancel(t.Context()))
	r := &replica{addr: fmt.Sprintf("127.0.0.1:%d", port), signal: signal, done: make(chan error, 1)}
	log := slog.New(slog.DiscardHandler)
	go func() { r.done <- srv.Start(drain.After(ctx, delay, timeout, log)) }()
	t.Cleanup(func() {
		signal()
		if err := r.wait(timeout + 10*time.Second); err != nil {
			t.Errorf("webhook replica %s: %v", r.addr, err)
		}
	})
	testenv.Eventually(t, 10*time.Second, "a webhook replica to serve TLS", func() error { return srv.StartedChecker()(nil) })
	return r
}

// stop is the pod's SIGTERM.
func (r *replica) stop() {
	r.signalled = time.Now()
	r.signal()
}

// wait returns the server's error once it stopped, or an error after d.
func (r *replica) wait(d time.Duration) error {
	select {
	case err := <-r.done:
		r.stopped = time.Now()
		r.done <- err // for the cleanup
		return err
	case <-time.After(d):
		return fmt.Errorf("still serving %s after the signal", d)
	}
}

// serviceProxy stands in for kube-proxy in front of a webhook Service: each
// new connection goes to the replica the proxy sends to at that moment,
// and stays with it (as conntrack keeps a connection on its endpoint).
type serviceProxy struct {
	ln      net.Listener
	backend atomic.Value // string: host:port
}

func startServiceProxy(t *testing.T) *serviceProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &serviceProxy{ln: ln}
	var conns sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); conns.Wait() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { p.forward(in) })
		}
	}()
	return p
}

func (p *serviceProxy) addr() string       { return p.ln.Addr().String() }
func (p *serviceProxy) sendTo(addr string) { p.backend.Store(addr) }

// forward pipes in to the current backend until both sides are done,
// passing each side's end of stream (FIN) on as the other's.
func (p *serviceProxy) forward(in net.Conn) {
	defer in.Close()
	out, err := net.Dial("tcp", p.backend.Load().(string))
	if err != nil {
		return
	}
	defer out.Close()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		if _, err := io.Copy(dst, src); err != nil {
			// A reset on one side resets the other.
			_ = in.Close()
			_ = out.Close()
			return
		}
		_ = dst.(*net.TCPConn).CloseWrite()
	}
	wg.Go(func() { pipe(out, in) })
	wg.Go(func() { pipe(in, out) })
	wg.Wait()
}
