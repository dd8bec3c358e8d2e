package webhook

import (
	"errors"
	"net/http"
	"sync/atomic"
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
// next request. The server keeps answering meanwhile; the caller stops it
// after a delay. The API server calls webhooks over HTTP/1.1 (it forces
// http/1.1 for webhook Services): a keep-alive connection it leaves idle
// through the whole drain is closed only when the server stops, and a
// request written on it in that instant is lost (rare; README, Upgrading).
type Drain struct {
	draining atomic.Bool
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
