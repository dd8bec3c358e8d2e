package runner

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sandbox.io/injector/runner/api"
)

// Server is the runner's HTTP API. Create it with New; it implements
// http.Handler. Run wraps it with the supervisor and a listener.
type Server struct {
	cfg       Config
	log       *slog.Logger
	root      *os.Root
	token     *tokenSource
	procs     *procTable
	exec      *executor
	execSlots chan struct{}
	metrics   *metrics
	mux       *http.ServeMux

	// epoch counts credential switches (claims); inflight holds the
	// requests authorized under the current one.
	epoch    atomic.Uint64
	inflight inflight

	mu            sync.Mutex
	sup           *supervisor
	claimed       *api.ClaimStatus
	claimDigest   [sha256.Size]byte
	claimVerifier [sha256.Size]byte
	hasVerifier   bool
}

// New opens the work directory (creating it) and builds the API.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("validating runner config: %w", err)
	}
	if err := os.MkdirAll(cfg.Workdir, 0o755); err != nil {
		return nil, fmt.Errorf("creating work directory: %w", err)
	}
	root, err := os.OpenRoot(cfg.Workdir)
	if err != nil {
		return nil, fmt.Errorf("opening work directory: %w", err)
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		root:      root,
		token:     newTokenSource(cfg.TokenFile),
		procs:     newProcTable(cfg.Reap),
		execSlots: make(chan struct{}, cfg.MaxConcurrent),
		metrics:   newMetrics(),
		mux:       http.NewServeMux(),
	}
	if cfg.ClaimVerifier != "" {
		v, err := parseVerifier(cfg.ClaimVerifier)
		if err != nil {
			root.Close()
			return nil, err
		}
		s.claimVerifier, s.hasVerifier = v, true
	}
	s.exec = &executor{shell: shellPath, workdir: cfg.Workdir, root: root, procs: s.procs}
	env := os.Environ()
	s.exec.env.Store(&env)
	if f, err := os.Open(os.DevNull); err == nil {
		s.exec.devNull = f
	}
	s.mux.HandleFunc("GET "+api.PathHealthz, s.healthz)
	s.mux.HandleFunc("GET "+api.PathReadyz, s.readyz)
	s.mux.HandleFunc("GET "+api.PathStatus, s.status)
	s.mux.HandleFunc("GET "+api.PathMetrics, s.serveMetrics)
	s.mux.HandleFunc("POST "+api.PathExecute, s.execute)
	s.mux.HandleFunc("POST "+api.PathClaim, s.claim)
	s.mux.HandleFunc("PUT "+api.PathFiles+"/{path...}", s.putFile)
	s.mux.HandleFunc("GET "+api.PathFiles+"/{path...}", s.getFile)
	s.mux.HandleFunc("DELETE "+api.PathFiles+"/{path...}", s.deleteFile)
	s.mux.HandleFunc("GET "+api.PathFiles, s.listFiles)
	return s, nil
}

// Close releases the work directory and stops the reaper.
func (s *Server) Close() error {
	s.procs.close()
	if s.exec.devNull != nil {
		s.exec.devNull.Close()
	}
	return s.root.Close()
}

// TokenConfigured reports whether a credential is set now: a token, or the
// claim verifier of a sandbox waiting for its claim. Without one the API is
// closed (or, with Config.InsecureLoopback, open to loopback clients only).
func (s *Server) TokenConfigured() bool {
	if _, ok := s.verifier(); ok {
		return true
	}
	_, ok := s.token.current()
	return ok
}

// ServeHTTP authenticates, serves and logs one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	if r.URL.Path != api.PathHealthz && r.URL.Path != api.PathReadyz {
		// A claim that comes after another switched the token fails (its
		// pool credential no longer holds, or it was authorized just
		// before the switch): say why, so that the claimant knows this
		// sandbox is taken rather than its token wrong. Who holds it stays
		// private.
		lostClaim := func(code int, err error) (int, error) {
			if code == http.StatusUnauthorized && r.Method == http.MethodPost && r.URL.Path == api.PathClaim && s.claimStatus() != nil {
				return http.StatusConflict, errAlreadyClaimed
			}
			return code, err
		}
		code, g, err := s.authorize(r)
		if code, err = lostClaim(code, err); code != 0 {
			s.refuse(rec, r, code, err)
			s.logRequest(r, rec, start, "")
			return
		}
		ctx, done, ok := s.inflight.begin(context.WithValue(r.Context(), grantKey{}, g), g.epoch, &s.epoch)
		if !ok {
			code, err := lostClaim(http.StatusUnauthorized, errStaleRequest)
			s.fail(rec, r, code, err)
			s.logRequest(r, rec, start, "")
			return
		}
		defer done()
		r = r.WithContext(ctx)
	}
	s.mux.ServeHTTP(rec, r)
	s.logRequest(r, rec, start, r.Pattern)
}

func (s *Server) logRequest(r *http.Request, rec *recorder, start time.Time, pattern string) {
	route := "unmatched"
	if pattern != "" {
		_, route, _ = strings.Cut(pattern, " ")
	} else if _, p := s.mux.Handler(r); p != "" {
		_, route, _ = strings.Cut(p, " ")
	}
	s.metrics.request(route, rec.status)
	level := slog.LevelInfo
	if r.URL.Path == api.PathHealthz || r.URL.Path == api.PathReadyz || r.URL.Path == api.PathMetrics {
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", rec.status),
		slog.Float64("durationMs", float64(time.Since(start).Microseconds())/1000),
		slog.Int64("bytes", rec.bytes),
		slog.String("remote", r.RemoteAddr),
	}
	if rec.errMsg != "" {
		attrs = append(attrs, slog.String("err", rec.errMsg))
	}
	if rec.exit != nil {
		attrs = append(attrs, slog.Int("exitCode", *rec.exit))
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// recorder remembers what the log line needs. Unwrap lets
// http.ResponseController reach Flush; ReadFrom keeps sendfile.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	written bool
	errMsg  string
	exit    *int
}

func (r *recorder) WriteHeader(code int) {
	if !r.written {
		r.status = code
		r.written = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.written = true
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	r.written = true
	n, err := io.Copy(r.ResponseWriter, src)
	r.bytes += n
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// fail answers with a JSON api.Error.
func (s *Server) fail(w http.ResponseWriter, _ *http.Request, code int, err error) {
	if rec, ok := w.(*recorder); ok {
		rec.errMsg = err.Error()
	}
	s.writeJSON(w, code, api.Error{Error: err.Error()})
}

func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"error":"encoding the answer"}`)
	}
	w.Header().Set("Content-Type", api.ContentTypeJSON)
	w.Header().Set("Content-Length", fmt.Sprint(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

// readyz is ready while serving and healthy (see Server.healthy). In wrap
// mode it needs the command running; in server mode a child that is not
// healthy makes it 503 only where the restart policy expects the child
// (Always, OnFailure), so that Never keeps today's behaviour.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if msg := s.notReady(); msg != "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, msg+"\n")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	s.writeJSON(w, http.StatusOK, api.Status{
		Mode:          s.cfg.Mode,
		Version:       s.cfg.Version,
		ClaimProtocol: api.ClaimProtocol,
		Healthy:       s.healthy(),
		Child:         s.child(),
		Executions:    len(s.execSlots),
		OrphansReaped: s.procs.orphans.Load(),
		Claim:         s.claimStatus(),
	})
}

// execute answers POST /execute, as JSON or, when the client accepts
// application/x-ndjson, as a stream of output lines and a final result.
func (s *Server) execute(w http.ResponseWriter, r *http.Request) {
	req, err := api.DecodeExecuteRequest(http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			s.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("execute request is larger than the limit of %d bytes", mbe.Limit))
			return
		}
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	if !s.stillValid(r) {
		s.fail(w, r, http.StatusUnauthorized, errStaleRequest)
		return
	}
	argv, dir, env, err := s.exec.prepare(req)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, ErrNoShell) {
			code = http.StatusUnprocessableEntity
		}
		s.fail(w, r, code, err)
		return
	}
	select {
	case s.execSlots <- struct{}{}:
	default:
		s.metrics.execBusy.Add(1)
		s.fail(w, r, http.StatusTooManyRequests, fmt.Errorf("too many concurrent executions (limit %d); retry later", s.cfg.MaxConcurrent))
		return
	}
	defer func() { <-s.execSlots }()

	var res api.ExecuteResult
	if acceptsNDJSON(r) {
		w.Header().Set("Content-Type", api.ContentTypeNDJSON)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		st := &streamSink{w: w, rc: http.NewResponseController(w)}
		st.enc = json.NewEncoder(w)
		st.rc.Flush()
		res = s.exec.run(r.Context(), execution{req: req, sink: st}, argv, dir, env)
		st.mu.Lock()
		_ = st.enc.Encode(api.StreamEvent{ExecuteResult: &res})
		_ = st.rc.Flush()
		st.mu.Unlock()
	} else {
		c := &capture{limit: s.cfg.MaxOutputBytes}
		res = s.exec.run(r.Context(), execution{req: req, sink: c}, argv, dir, env)
		res.Stdout, res.Stderr, res.Truncated = string(c.out), string(c.err), c.truncated
		s.writeJSON(w, http.StatusOK, res)
	}
	if rec, ok := w.(*recorder); ok {
		rec.exit = &res.ExitCode
	}
	if res.TimedOut {
		s.metrics.execTimeout.Add(1)
	}
	s.metrics.execution(time.Duration(res.DurationMs * float64(time.Millisecond)))
}

func acceptsNDJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, api.ContentTypeNDJSON) {
			return true
		}
	}
	return false
}

// streamSink writes each chunk as one NDJSON line and flushes it. After a
// write error (the client left) the output is still drained, unsent; the
// request context then kills the command.
type streamSink struct {
	mu     sync.Mutex
	w      io.Writer
	rc     *http.ResponseController
	enc    *json.Encoder
	broken bool
}

func (s *streamSink) write(stream string, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken {
		return
	}
	if err := s.enc.Encode(api.StreamEvent{Stream: stream, Data: string(p)}); err != nil {
		s.broken = true
		return
	}
	if err := s.rc.Flush(); err != nil {
		s.broken = true
	}
}

func (s *Server) child() *api.ChildStatus {
	s.mu.Lock()
	sup := s.sup
	s.mu.Unlock()
	if sup == nil {
		return nil
	}
	return sup.snapshot()
}
