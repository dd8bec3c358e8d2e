package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// serverIdleTimeout is how long the server keeps an idle connection. It is
// longer than the API server's own idle timeout for webhook connections
// (90 s, Go's default), so that the API server, not this server, closes
// them: a server that closes an idle HTTP/1.1 connection races the client's
// next request on it, and the API server does not retry an admission.
const serverIdleTimeout = 2 * time.Minute

// shutdownTimeout bounds the wait for admissions in flight once the server
// stops.
const shutdownTimeout = 30 * time.Second

// ServerOptions configure a Server.
type ServerOptions struct {
	// Host and Port the server listens on; Host "" is every address.
	Host string
	Port int
	// CertDir holds tls.crt and tls.key, reloaded when they change. Unused
	// when a TLSOpts function sets GetCertificate.
	CertDir string
	// TLSOpts change the TLS configuration before the server starts.
	TLSOpts []func(*tls.Config)
	// Drain, when set, counts the server's connections (Drain.Wait).
	Drain *Drain
	// Logger: nil discards.
	Logger *slog.Logger
}

// Server is the admission webhook's HTTPS server, a controller-runtime
// webhook.Server. Register is controller-runtime's own (with its
// controller_runtime_webhook_* request metrics); the http.Server differs:
// it tells Drain about every connection, and it leaves closing an idle
// connection to the client (serverIdleTimeout).
type Server struct {
	crwebhook.Server
	opts    ServerOptions
	log     *slog.Logger
	started atomic.Bool
}

var _ crwebhook.Server = (*Server)(nil)

// NewServer returns a Server; the manager starts it.
func NewServer(opts ServerOptions) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		Server: crwebhook.NewServer(crwebhook.Options{Host: opts.Host, Port: opts.Port}),
		opts:   opts,
		log:    log,
	}
}

// addr is the address the server listens on.
func (s *Server) addr() string {
	return net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// Start serves until ctx ends, then closes the port and waits up to
// shutdownTimeout for the admissions in flight.
func (s *Server) Start(ctx context.Context) error {
	cfg := &tls.Config{NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	for _, opt := range s.opts.TLSOpts {
		opt(cfg)
	}
	if cfg.GetCertificate == nil {
		watcher, err := certwatcher.New(filepath.Join(s.opts.CertDir, "tls.crt"), filepath.Join(s.opts.CertDir, "tls.key"))
		if err != nil {
			return fmt.Errorf("loading the serving certificate: %w", err)
		}
		cfg.GetCertificate = watcher.GetCertificate
		go func() {
			if err := watcher.Start(ctx); err != nil {
				s.log.Error("watching the serving certificate", "err", err)
			}
		}()
	}
	listener, err := tls.Listen("tcp", s.addr(), cfg)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.addr(), err)
	}
	srv := &http.Server{
		Handler:           s.WebhookMux(),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		MaxHeaderBytes:    1 << 20,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       serverIdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if s.opts.Drain != nil {
		srv.ConnState = s.opts.Drain.ConnState
	}
	stopped := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		stopped <- srv.Shutdown(sctx)
	}()
	s.log.Info("serving admissions", "address", s.addr())
	s.started.Store(true)
	if err := srv.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving admissions: %w", err)
	}
	if err := <-stopped; err != nil {
		return fmt.Errorf("stopping the webhook server: %w", err)
	}
	return nil
}

// StartedChecker is a readiness check that passes once the server answers
// a TLS handshake on its port.
func (s *Server) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		if !s.started.Load() {
			return errors.New("webhook server has not started yet")
		}
		d := &net.Dialer{Timeout: 10 * time.Second}
		// Only that a handshake completes matters here, not whose
		// certificate it shows.
		conn, err := tls.DialWithDialer(d, "tcp", s.addr(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		return conn.Close()
	}
}
