package runner

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// metrics are exported in the Prometheus text format, written by hand so
// that the runner links no metrics library.
type metrics struct {
	mu       sync.Mutex
	requests map[requestKey]uint64

	execBuckets [len(execBounds) + 1]atomic.Uint64
	execSum     atomic.Int64 // microseconds
	execCount   atomic.Uint64
	execBusy    atomic.Uint64 // refused with 429
	execTimeout atomic.Uint64

	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
}

type requestKey struct {
	route string
	code  int
}

// execBounds are the upper bounds (seconds) of the execution histogram.
var execBounds = [...]float64{0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

func newMetrics() *metrics {
	return &metrics{requests: map[requestKey]uint64{}}
}

func (m *metrics) request(route string, code int) {
	m.mu.Lock()
	m.requests[requestKey{route, code}]++
	m.mu.Unlock()
}

func (m *metrics) execution(d time.Duration) {
	sec := d.Seconds()
	i := 0
	for i < len(execBounds) && sec > execBounds[i] {
		i++
	}
	m.execBuckets[i].Add(1)
	m.execSum.Add(d.Microseconds())
	m.execCount.Add(1)
}

func (s *Server) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m := s.metrics
	m.mu.Lock()
	keys := make([]requestKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	counts := make([]uint64, len(keys))
	slices.SortFunc(keys, func(a, b requestKey) int {
		if a.route != b.route {
			if a.route < b.route {
				return -1
			}
			return 1
		}
		return a.code - b.code
	})
	for i, k := range keys {
		counts[i] = m.requests[k]
	}
	m.mu.Unlock()

	var b []byte
	b = metricHeader(b, "sandbox_runner_build_info", "gauge", "Version of the runner; always 1.")
	b = fmt.Appendf(b, "sandbox_runner_build_info{version=%q,mode=%q} 1\n", s.cfg.Version, s.cfg.Mode)
	b = metricHeader(b, "sandbox_runner_http_requests_total", "counter", "HTTP requests by route and status code.")
	for i, k := range keys {
		b = fmt.Appendf(b, "sandbox_runner_http_requests_total{route=%q,code=\"%d\"} %d\n", k.route, k.code, counts[i])
	}
	b = metricHeader(b, "sandbox_runner_executions_active", "gauge", "Commands of /execute running now.")
	b = fmt.Appendf(b, "sandbox_runner_executions_active %d\n", len(s.execSlots))
	b = metricHeader(b, "sandbox_runner_executions_rejected_total", "counter", "Executions refused because the concurrency limit was reached.")
	b = fmt.Appendf(b, "sandbox_runner_executions_rejected_total %d\n", m.execBusy.Load())
	b = metricHeader(b, "sandbox_runner_executions_timed_out_total", "counter", "Executions killed by their timeout.")
	b = fmt.Appendf(b, "sandbox_runner_executions_timed_out_total %d\n", m.execTimeout.Load())
	b = metricHeader(b, "sandbox_runner_execution_duration_seconds", "histogram", "Wall time of /execute commands.")
	var cum uint64
	for i, le := range execBounds {
		cum += m.execBuckets[i].Load()
		b = fmt.Appendf(b, "sandbox_runner_execution_duration_seconds_bucket{le=\"%g\"} %d\n", le, cum)
	}
	cum += m.execBuckets[len(execBounds)].Load()
	b = fmt.Appendf(b, "sandbox_runner_execution_duration_seconds_bucket{le=\"+Inf\"} %d\n", cum)
	b = fmt.Appendf(b, "sandbox_runner_execution_duration_seconds_sum %g\n", float64(m.execSum.Load())/1e6)
	b = fmt.Appendf(b, "sandbox_runner_execution_duration_seconds_count %d\n", m.execCount.Load())
	b = metricHeader(b, "sandbox_runner_file_bytes_total", "counter", "Bytes moved through /files.")
	b = fmt.Appendf(b, "sandbox_runner_file_bytes_total{direction=\"in\"} %d\n", m.bytesIn.Load())
	b = fmt.Appendf(b, "sandbox_runner_file_bytes_total{direction=\"out\"} %d\n", m.bytesOut.Load())
	b = metricHeader(b, "sandbox_runner_orphans_reaped_total", "counter", "Exited orphan processes reaped by the runner.")
	b = fmt.Appendf(b, "sandbox_runner_orphans_reaped_total %d\n", s.procs.orphans.Load())
	if c := s.child(); c != nil {
		b = metricHeader(b, "sandbox_runner_child_running", "gauge", "1 while the supervised command runs.")
		running, code := 0, -1
		if c.Running {
			running = 1
		}
		if c.ExitCode != nil {
			code = *c.ExitCode
		}
		b = fmt.Appendf(b, "sandbox_runner_child_running %d\n", running)
		b = metricHeader(b, "sandbox_runner_child_exit_code", "gauge", "Exit code of the supervised command; -1 while it runs.")
		b = fmt.Appendf(b, "sandbox_runner_child_exit_code %d\n", code)
		b = s.appendChildMetrics(b)
	}
	_, _ = w.Write(b)
}

func metricHeader(b []byte, name, typ, help string) []byte {
	return fmt.Appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

var _ io.Writer = (*countingWriter)(nil)
