package webhook

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Drain is a webhook server's way out of a rollout without refusing an
// admission. The API server keeps its connections to a webhook pod open
// (through the Service's address, past the moment kube-proxy stops sending
// new connections there), so a pod that closes them while the API server
// writes a request on one loses that request, and failurePolicy Fail refuses
// the pod being admitted. Once Start is called, every answer says
// "Connection: close": an HTTP/1.1 connection closes after it, and Go's
// HTTP/2 server sends GOAWAY and closes the connection once idle, so the
// API server opens a new connection, to a pod that is not stopping, for its
// next request.
//
// The API server calls webhooks over HTTP/1.1 (it forces http/1.1 for
// webhook Services), and a keep-alive connection it leaves idle through the
// drain carries no answer to say so: a server that closes it races the API
// server's next write on it. So the server counts its connections
// (ConnState), and the caller, after a delay, Waits until the API server has
// closed every one (it closes a connection idle for 90 s, and each one it
// uses during the drain closes after the answer) before it stops the server.
type Drain struct {
	draining atomic.Bool

	mu   sync.Mutex
	open int
	// none is closed while no connection is open.
	none chan struct{}
}

// Start makes every later answer close its connection.
func (d *Drain) Start() { d.draining.Store(true) }

// Draining reports whether Start was called.
func (d *Drain) Draining() bool { return d.draining.Load() }

// Wrap closes the connection after each answer of next once draining.
func (d *Drain) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Draining() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// ConnState is an http.Server's ConnState hook: it counts the server's open
// connections for Wait.
func (d *Drain) ConnState(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.open == 0 {
			d.none = make(chan struct{})
		}
		d.open++
	case http.StateClosed, http.StateHijacked:
		d.mu.Lock()
		defer d.mu.Unlock()
		d.open--
		if d.open == 0 {
			close(d.none)
		}
	case http.StateActive, http.StateIdle:
		// Every request moves a connection between these two: no lock.
	}
}

// Open is the number of connections open on the server.
func (d *Drain) Open() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.open
}

// Wait returns nil once no connection is open on the server, or ctx's error
// when it ends first.
func (d *Drain) Wait(ctx context.Context) error {
	d.mu.Lock()
	none, open := d.none, d.open
	d.mu.Unlock()
	if open == 0 {
		return nil
	}
	select {
	case <-none:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// After returns the context to run the webhook server with: it ends once
// ctx (the signal to stop) has ended and the drain is over. The drain
// starts when ctx ends and lasts at least delay (meanwhile the pod leaves
// the Service's endpoints, and new connections may still arrive), then until
// no connection is open, at most timeout after ctx ended. With no delay and
// no timeout it is ctx itself.
func (d *Drain) After(ctx context.Context, delay, timeout time.Duration, log *slog.Logger) context.Context {
	if delay <= 0 && timeout <= 0 {
		return ctx
	}
	run, stop := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer stop()
		<-ctx.Done()
		start := time.Now()
		d.Start()
		log.Info("stopping: draining connections before the server closes", "delay", delay, "timeout", timeout, "open", d.Open())
		time.Sleep(delay)
		if wait := timeout - time.Since(start); wait > 0 {
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait)
			err := d.Wait(wctx)
			cancel()
			if err != nil {
				log.Warn("drain timed out: closing the connections the API server left open", "open", d.Open(), "after", time.Since(start).Round(time.Millisecond))
				return
			}
		}
		log.Info("drained", "open", d.Open(), "after", time.Since(start).Round(time.Millisecond))
	}()
	return run
}

// errDraining is the readiness check's answer while draining.
var errDraining = errors.New("draining: this webhook pod is stopping")

// Checker is a readiness check that fails once draining, so that the pod
// leaves the Service's endpoints even before the kubelet marks it
// terminating.
func (d *Drain) Checker(*http.Request) error {
	if d.Draining() {
		return errDraining
	}
	return nil
}
