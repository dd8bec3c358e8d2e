package webhook

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
	"time"
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

// TestDrainAfter: the server's context outlives the signal by the delay,
// then by as long as a connection stays open, but never by more than the
// timeout; with neither it is the signal's own context.
func TestDrainAfter(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	const delay, timeout = 200 * time.Millisecond, 2 * time.Second
	// ends runs After on a drain with open connections, signals, closes
	// the connections after closeAfter (never when negative) and returns
	// how long the server's context outlived the signal.
	ends := func(t *testing.T, open int, closeAfter time.Duration) time.Duration {
		t.Helper()
		d := &Drain{}
		for range open {
			d.ConnState(nil, http.StateNew)
		}
		signalled, signal := context.WithCancel(context.Background())
		run := d.After(signalled, delay, timeout, log)
		if d.Draining() || run.Err() != nil {
			t.Fatal("draining or stopped before the signal")
		}
		start := time.Now()
		signal()
		if closeAfter >= 0 {
			time.AfterFunc(closeAfter, func() {
				for range open {
					d.ConnState(nil, http.StateClosed)
				}
			})
		}
		select {
		case <-run.Done():
		case <-time.After(timeout + 5*time.Second):
			t.Fatal("the server's context outlived the drain timeout by 5 s")
		}
		if !d.Draining() {
			t.Error("the server stopped without draining")
		}
		return time.Since(start)
	}
	t.Run("no connection: the delay", func(t *testing.T) {
		if took := ends(t, 0, -1); took < delay || took >= timeout {
			t.Errorf("stopped %s after the signal, want the %s delay", took, delay)
		}
	})
	t.Run("connections closed during the delay: the delay", func(t *testing.T) {
		if took := ends(t, 3, delay/2); took < delay || took >= timeout {
			t.Errorf("stopped %s after the signal, want the %s delay", took, delay)
		}
	})
	t.Run("connections closed after the delay: then", func(t *testing.T) {
		const closed = 3 * delay
		if took := ends(t, 3, closed); took < closed || took >= timeout {
			t.Errorf("stopped %s after the signal, want once the connections closed, %s", took, closed)
		}
	})
	t.Run("a connection left open: the timeout", func(t *testing.T) {
		if took := ends(t, 1, -1); took < timeout {
			t.Errorf("stopped %s after the signal with a connection open, want the %s timeout", took, timeout)
		}
	})
	t.Run("neither delay nor timeout: the signal", func(t *testing.T) {
		now, stop := context.WithCancel(context.Background())
		undelayed := (&Drain{}).After(now, 0, 0, log)
		stop()
		select {
		case <-undelayed.Done():
		case <-time.After(5 * time.Second):
			t.Error("with no delay and no timeout, the server's context outlived the signal")
		}
	})
}
