package scale

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// Counts are what a CountingProxy saw.
type Counts struct {
	Requests  int64 // requests of every verb, watches included
	Watches   int64 // of which watches (?watch=true or /watch/)
	BytesRead int64 // response body bytes sent back to the client
}

// Sub returns c - o.
func (c Counts) Sub(o Counts) Counts {
	return Counts{Requests: c.Requests - o.Requests, Watches: c.Watches - o.Watches, BytesRead: c.BytesRead - o.BytesRead}
}

// CountingProxy is a reverse proxy on 127.0.0.1 in front of an API server.
// Clients speak plain HTTP to it without credentials; it forwards with the
// upstream config's credentials and TLS, and counts requests and response
// bytes. Watches are streamed (flushed at once).
type CountingProxy struct {
	requests, watches, bytes atomic.Int64
	ln                       net.Listener
	srv                      *http.Server
}

// NewCountingProxy starts a proxy to upstream on a free loopback port.
func NewCountingProxy(upstream *rest.Config) (*CountingProxy, error) {
	target, err := url.Parse(upstream.Host)
	if err != nil {
		return nil, fmt.Errorf("parsing the API server address %q: %w", upstream.Host, err)
	}
	if target.Scheme == "" {
		target.Scheme = "https"
	}
	transport, err := rest.TransportFor(upstream)
	if err != nil {
		return nil, fmt.Errorf("building the transport to the API server: %w", err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the counting proxy: %w", err)
	}
	p := &CountingProxy{ln: ln}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport:     transport,
		FlushInterval: -1,
		// A client hanging up (a watch ended) is no news.
		ErrorLog: log.New(io.Discard, "", 0),
		ModifyResponse: func(resp *http.Response) error {
			resp.Body = &countingBody{ReadCloser: resp.Body, n: &p.bytes}
			return nil
		},
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		if isWatch(r) {
			p.watches.Add(1)
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func isWatch(r *http.Request) bool {
	return r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" || strings.Contains(r.URL.Path, "/watch/")
}

// Config returns a client config that reaches the API server through the
// proxy, with the QPS and burst of base.
func (p *CountingProxy) Config(base *rest.Config) *rest.Config {
	return &rest.Config{
		Host:      "http://" + p.ln.Addr().String(),
		QPS:       base.QPS,
		Burst:     base.Burst,
		UserAgent: base.UserAgent,
		Timeout:   base.Timeout,
	}
}

// Addr is the proxy's host:port.
func (p *CountingProxy) Addr() string { return p.ln.Addr().String() }

// Counts returns the totals so far.
func (p *CountingProxy) Counts() Counts {
	return Counts{Requests: p.requests.Load(), Watches: p.watches.Load(), BytesRead: p.bytes.Load()}
}

// Close stops the proxy and ends the streams through it.
func (p *CountingProxy) Close() error { return p.srv.Close() }

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// Kubeconfig returns a kubeconfig file's content that points a program
// (agent-sandbox's controller) at the proxy.
func (p *CountingProxy) Kubeconfig() []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: sim
  cluster:
    server: http://%s
contexts:
- name: sim
  context:
    cluster: sim
    user: sim
users:
- name: sim
  user: {}
current-context: sim
`, p.Addr())
}
