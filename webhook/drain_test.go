package webhook

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
)

// TestDrainMovesClientsOff: before Start, a client reuses its connection;
// once draining, each answer still arrives whole but ends its connection,
// over HTTP/1.1 (Connection: close) and HTTP/2 (GOAWAY), so the client's
// next request opens a new one (in a cluster: to a replica that is not
// stopping), and /readyz fails.
func TestDrainMovesClientsOff(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			d := &Drain{}
			srv := httptest.NewUnstartedServer(d.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "answered")
			})))
			srv.EnableHTTP2 = proto == "HTTP/2.0"
			srv.StartTLS()
			defer srv.Close()
			client := srv.Client()
			client.Transport.(*http.Transport).ForceAttemptHTTP2 = srv.EnableHTTP2
			if !srv.EnableHTTP2 {
				client.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"http/1.1"}
				client.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			get := func() (reused bool) {
				t.Helper()
				trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
				req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodPost, srv.URL, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("request: %v", err)
				}
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.Proto != proto || string(body) != "answered" {
					t.Fatalf("answer %s %q, want %s \"answered\"", resp.Proto, body, proto)
				}
				return reused
			}
			get()
			if !get() {
				t.Fatal("before draining, the second request did not reuse the connection")
			}
			if err := d.Checker(nil); err != nil {
				t.Fatalf("readiness before draining: %v", err)
			}
			d.Start()
			get() // its answer ends the connection it came on
			if get() {
				t.Error("once draining, a request reused a connection the previous answer should have ended")
			}
			if d.Checker(nil) == nil {
				t.Error("readiness passes while draining")
			}
		})
	}
}
