package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sandbox.io/injector/webhook"
)

// TestAdmissionLoad is the HTTPS half of `make bench`: it sends admission
// reviews at a fixed rate (open loop, HTTP/2 over loopback, as the API
// server's client does) to our handler and to a no-op controller-runtime
// webhook on the same server, and prints p50/p99 of both and their ratio.
// It only runs with SANDBOX_BENCH_LOAD=1; it reports, it does not judge.
func TestAdmissionLoad(t *testing.T) {
	if os.Getenv("SANDBOX_BENCH_LOAD") != "1" {
		t.Skip("set SANDBOX_BENCH_LOAD=1 (make bench) to run the admission load report")
	}
	seconds := 5.0
	if v, err := strconv.ParseFloat(os.Getenv("SANDBOX_BENCH_SECONDS"), 64); err == nil && v > 0 {
		seconds = v
	}
	cl := startCluster(t)
	cl.server.Register("/noop", webhook.LimitRequests(&admission.Webhook{Handler: admission.HandlerFunc(
		func(_ context.Context, _ admission.Request) admission.Response { return admission.Allowed("") })}))
	ns := cl.namespace(t, "load", nil)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cl.caPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(true)
	tr.Protocols.SetHTTP2(true)
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	type row struct {
		shape           string
		rate            int
		noop, ours      latencies
		noopErr, ourErr int
	}
	var rows []row
	for _, shape := range []struct {
		name string
		env  int
		rate int
	}{{"typical pod", 3, 500}, {"1000-env pod", 1000, 100}} {
		body := reviewBody(t, ns, shape.env)
		r := row{shape: shape.name, rate: shape.rate}
		// Warm both paths (TLS session, caches), then measure.
		fire(hc, cl.baseURL+"/noop", body, shape.rate, 0.5)
		fire(hc, cl.baseURL+webhook.Path, body, shape.rate, 0.5)
		r.noop, r.noopErr = fire(hc, cl.baseURL+"/noop", body, shape.rate, seconds)
		r.ours, r.ourErr = fire(hc, cl.baseURL+webhook.Path, body, shape.rate, seconds)
		rows = append(rows, r)
	}
	fmt.Printf("\nAdmission over HTTPS (HTTP/2, loopback, open loop, %.0fs per cell)\n", seconds)
	fmt.Printf("%-14s %6s %10s %10s %10s %10s %8s %8s\n", "pod", "rate/s", "noop p50", "noop p99", "ours p50", "ours p99", "p99 x", "errors")
	for _, r := range rows {
		fmt.Printf("%-14s %6d %10s %10s %10s %10s %7.2fx %8d\n", r.shape, r.rate,
			r.noop.pct(50), r.noop.pct(99), r.ours.pct(50), r.ours.pct(99),
			float64(r.ours.at(99))/float64(r.noop.at(99)), r.noopErr+r.ourErr)
		if r.noopErr+r.ourErr > 0 {
			t.Errorf("%s: %d requests failed", r.shape, r.noopErr+r.ourErr)
		}
	}
}

type latencies []time.Duration

func (l latencies) at(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func (l latencies) pct(p float64) string {
	return fmt.Sprintf("%.2fms", float64(l.at(p).Microseconds())/1000)
}

// fire sends body to url at rate per second for seconds, each request on
// its own goroutine at its scheduled time (open loop: a slow answer does not
// delay the next request), and returns the latencies and the error count.
func fire(hc *http.Client, url string, body []byte, rate int, seconds float64) (latencies, int) {
	n := int(float64(rate) * seconds)
	out := make(latencies, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := 0
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				errs++
				return
			}
			out = append(out, d)
		}()
	}
	wg.Wait()
	return out, errs
}

func reviewBody(t *testing.T, ns string, envs int) []byte {
	t.Helper()
	pod := annotatedPod(ns, "", nil)
	pod.GenerateName = "load-"
	for i := range envs {
		pod.Spec.Containers[0].Env = append(pod.Spec.Containers[0].Env,
			corev1.EnvVar{Name: fmt.Sprintf("VAR_%04d", i), Value: fmt.Sprintf("value-%d", i)})
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("0b8b3c2e-1b7f-4c8e-9a53-1d8c7a6b5e4f"),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: ns,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
	out, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
