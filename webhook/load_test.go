package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sandbox.io/injector/internal/logging"
	"sandbox.io/injector/webhook"
)

// TestAdmissionLoad is the HTTPS half of `make bench-webhook`: it sends
// admission reviews at a fixed rate (open loop, HTTP/2 over loopback, as the
// API server's client does) to our handler and to a no-op controller-runtime
// webhook on the same server, and prints p50/p90/p99 of both, their p99
// ratio, and where the time goes: the server's own time per request (the
// whole ServeHTTP, and our handler alone), allocation, GC and scheduling
// delays in this process. The two are measured in alternating one-second
// slices (noop then ours, then ours then noop, ...), so that a change in the
// machine's load during the run falls on both alike. Our handler logs as in
// production: JSON at Info, to a file. It only runs with
// SANDBOX_BENCH_LOAD=1; it reports, it does not judge.
func TestAdmissionLoad(t *testing.T) {
	if os.Getenv("SANDBOX_BENCH_LOAD") != "1" {
		t.Skip("set SANDBOX_BENCH_LOAD=1 (make bench-webhook) to run the admission load report")
	}
	seconds := 5.0
	if v, err := strconv.ParseFloat(os.Getenv("SANDBOX_BENCH_SECONDS"), 64); err == nil && v > 0 {
		seconds = v
	}
	logFile, err := os.Create(filepath.Join(t.TempDir(), "webhook.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logFile.Close() })
	logs := logging.NewHandler(logFile, slog.LevelInfo)
	ctrl.SetLogger(logr.FromSlogHandler(logs)) // as cmd/sandbox-webhook does
	cl := startClusterLogging(t, slog.New(logs))
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
		shape      string
		rate       int
		noop, ours loadCell
	}
	var rows []row
	for _, shape := range []struct {
		name string
		env  int
		rate int
	}{{"typical pod", 3, 500}, {"1000-env pod", 1000, 100}} {
		body := reviewBody(t, ns, shape.env)
		r := row{shape: shape.name, rate: shape.rate}
		r.noop.path, r.ours.path = "/noop", webhook.Path
		// Warm both paths (TLS session, caches), then measure.
		fire(hc, cl.baseURL+"/noop", body, shape.rate, 0.5)
		fire(hc, cl.baseURL+webhook.Path, body, shape.rate, 0.5)
		nSlices := max(1, int(math.Round(seconds)))
		for i := range nSlices {
			first, second := &r.noop, &r.ours
			if i%2 == 1 {
				first, second = second, first
			}
			for _, c := range []*loadCell{first, second} {
				c.run(t, cl, logFile, hc, body, shape.rate, seconds/float64(nSlices))
			}
		}
		rows = append(rows, r)
	}
	fmt.Printf("\nAdmission over HTTPS (HTTP/2, loopback, open loop, %.0fs per cell in alternating 1s slices)\n", seconds)
	fmt.Printf("%-13s %6s %9s %9s %9s %9s %9s %9s %7s %6s\n", "pod", "rate/s",
		"noop p50", "noop p90", "noop p99", "ours p50", "ours p90", "ours p99", "p99 x", "errors")
	for _, r := range rows {
		fmt.Printf("%-13s %6d %9s %9s %9s %9s %9s %9s %6.2fx %6d\n", r.shape, r.rate,
			r.noop.lat.pct(50), r.noop.lat.pct(90), r.noop.lat.pct(99), r.ours.lat.pct(50), r.ours.lat.pct(90), r.ours.lat.pct(99),
			float64(r.ours.lat.at(99))/float64(r.noop.lat.at(99)), r.noop.errs+r.ours.errs)
		if r.noop.errs+r.ours.errs > 0 {
			t.Errorf("%s: %d requests failed", r.shape, r.noop.errs+r.ours.errs)
		}
	}
	fmt.Printf("\nWhere the time goes, per request over the same slices: the server's time (controller-runtime's histogram of\n" +
		"the whole ServeHTTP: body, review decoding, handler, response encoding; not TLS or HTTP/2), our handler's alone;\n" +
		"then this process's allocation, GC and goroutine scheduling delay (the process also runs the load generator)\n")
	fmt.Printf("%-13s %-5s %9s %9s %10s %9s %11s %11s %8s\n", "pod", "path", "server", "handler",
		"alloc", "GC/1000", "GC STW p99", "sched p99", "log")
	for _, r := range rows {
		for _, c := range []*loadCell{&r.noop, &r.ours} {
			name := "noop"
			handler := "-"
			if c == &r.ours {
				name, handler = "ours", c.handler.mean()
			}
			n := float64(max(1, len(c.lat)+c.errs))
			fmt.Printf("%-13s %-5s %9s %9s %8.1fKiB %9.1f %11s %11s %6.0fB\n", r.shape, name, c.server.mean(), handler,
				float64(c.allocBytes)/n/1024, float64(c.gcCycles)/n*1000, c.gcPause.quantile(0.99), c.sched.quantile(0.99),
				float64(c.logBytes)/n)
		}
	}
}

// loadCell is one path's share of a row: its latencies and errors, and the
// deltas of the process's and the server's counters over its slices.
type loadCell struct {
	path            string
	lat             latencies
	errs            int
	server, handler meanOf
	allocBytes      uint64
	gcCycles        uint64
	gcPause, sched  histDelta
	logBytes        int64
}

// run fires at c.path for seconds and adds what it measured to c.
func (c *loadCell) run(t *testing.T, cl *cluster, logFile *os.File, hc *http.Client, body []byte, rate int, seconds float64) {
	t.Helper()
	before := readLoadCounters(t, cl, c.path, logFile)
	lat, errs := fire(hc, cl.baseURL+c.path, body, rate, seconds)
	after := readLoadCounters(t, cl, c.path, logFile)
	c.lat = append(c.lat, lat...)
	c.errs += errs
	c.server.add(before.server, after.server)
	c.handler.add(before.handler, after.handler)
	c.allocBytes += after.rt[0].Value.Uint64() - before.rt[0].Value.Uint64()
	c.gcCycles += after.rt[1].Value.Uint64() - before.rt[1].Value.Uint64()
	c.gcPause.add(before.rt[2].Value.Float64Histogram(), after.rt[2].Value.Float64Histogram())
	c.sched.add(before.rt[3].Value.Float64Histogram(), after.rt[3].Value.Float64Histogram())
	c.logBytes += after.logBytes - before.logBytes
}

type loadCounters struct {
	rt              []metrics.Sample
	server, handler meanOf
	logBytes        int64
}

func readLoadCounters(t *testing.T, cl *cluster, path string, logFile *os.File) loadCounters {
	t.Helper()
	c := loadCounters{rt: []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/sched/pauses/total/gc:seconds"},
		{Name: "/sched/latencies:seconds"},
	}}
	metrics.Read(c.rt)
	c.server = histogramSum(t, crmetrics.Registry, "controller_runtime_webhook_latency_seconds", "webhook", path)
	c.handler = histogramSum(t, cl.metrics, "sandbox_webhook_admission_duration_seconds", "", "")
	st, err := logFile.Stat()
	if err != nil {
		t.Fatal(err)
	}
	c.logBytes = st.Size()
	return c
}

// meanOf is a histogram's sum and count, or the difference of two.
type meanOf struct {
	sum   float64
	count uint64
}

func (m *meanOf) add(before, after meanOf) {
	m.sum += after.sum - before.sum
	m.count += after.count - before.count
}

func (m meanOf) mean() string {
	if m.count == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0fµs", m.sum/float64(m.count)*1e6)
}

// histogramSum adds up the histograms called name in g whose label has
// value (every one, when label is "").
func histogramSum(t *testing.T, g prometheus.Gatherer, name, label, value string) meanOf {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var m meanOf
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if label != "" && !slices.ContainsFunc(s.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == label && l.GetValue() == value
			}) {
				continue
			}
			m.sum += s.GetHistogram().GetSampleSum()
			m.count += s.GetHistogram().GetSampleCount()
		}
	}
	return m
}

// histDelta accumulates the growth of a runtime/metrics histogram.
type histDelta struct {
	counts  []uint64
	buckets []float64
}

func (h *histDelta) add(before, after *metrics.Float64Histogram) {
	if h.counts == nil {
		h.counts, h.buckets = make([]uint64, len(after.Counts)), after.Buckets
	}
	for i := range after.Counts {
		h.counts[i] += after.Counts[i] - before.Counts[i]
	}
}

// quantile is the upper bound of the bucket that holds quantile q.
func (h *histDelta) quantile(q float64) string {
	var total uint64
	for _, n := range h.counts {
		total += n
	}
	if total == 0 {
		return "-"
	}
	var seen uint64
	for i, n := range h.counts {
		seen += n
		if float64(seen) >= q*float64(total) {
			bound := h.buckets[i+1]
			if math.IsInf(bound, 1) {
				bound = h.buckets[i]
			}
			return time.Duration(bound * float64(time.Second)).Round(time.Microsecond).String()
		}
	}
	return "-"
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
