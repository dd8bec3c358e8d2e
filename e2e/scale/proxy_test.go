package scale

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestCountingProxyCountsRequestsWatchesAndBytes(t *testing.T) {
	var sawAuth []string
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawAuth = append(sawAuth, r.Header.Get("Authorization"))
		switch {
		case r.URL.Query().Get("watch") == "true":
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, `{"type":"ADDED"}`+"\n")
		default:
			_, _ = io.WriteString(w, strings.Repeat("x", 1000))
		}
	}))
	t.Cleanup(upstream.Close)
	cfg := &rest.Config{Host: upstream.URL, BearerToken: "admin", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	p, err := NewCountingProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })

	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + p.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	before := p.Counts()
	if got := get("/api/v1/pods"); len(got) != 1000 {
		t.Fatalf("list body %d bytes", len(got))
	}
	if got := get("/api/v1/pods?watch=true"); got != `{"type":"ADDED"}`+"\n" {
		t.Fatalf("watch body %q", got)
	}
	d := p.Counts().Sub(before)
	if d != (Counts{Requests: 2, Watches: 1, BytesRead: 1017}) {
		t.Fatalf("counts %+v", d)
	}
	for _, a := range sawAuth {
		if a != "Bearer admin" {
			t.Fatalf("upstream saw Authorization %q, want the upstream config's", a)
		}
	}

	kc, err := clientcmd.RESTConfigFromKubeConfig(p.Kubeconfig())
	if err != nil {
		t.Fatalf("the proxy's kubeconfig does not load: %v", err)
	}
	if kc.Host != "http://"+p.Addr() {
		t.Fatalf("kubeconfig host %q", kc.Host)
	}
	if got := p.Config(&rest.Config{QPS: 7, Burst: 9}); got.Host != kc.Host || got.QPS != 7 || got.Burst != 9 {
		t.Fatalf("Config = %+v", got)
	}
}
