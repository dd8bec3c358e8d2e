package runner

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"syscall"
	"time"
)

// This file holds the runner's defences against requests that try to hold
// its resources: files that block on open, uploads that trickle, refused
// clients that keep their connection.

// errNotRegular is wrapped when a path names something the files API does
// not serve: a FIFO, socket or device.
var errNotRegular = errors.New("is not a regular file or directory")

// openForRead opens name below the root for reading without blocking: an
// open of a FIFO waits for a writer (holding an OS thread for good), a
// device can do anything. It returns the open file only when it is a
// regular file or a directory; anything else is refused with errNotRegular
// before a byte is read (a socket already fails to open).
func (s *Server) openForRead(name string) (*os.File, fs.FileInfo, error) {
	f, err := s.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ENXIO) {
			return nil, nil, fmt.Errorf("%q %w (it is a socket)", name, errNotRegular)
		}
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkKind(name, fi)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

func checkKind(name string, fi fs.FileInfo) error {
	if fi.Mode().IsRegular() || fi.IsDir() {
		return nil
	}
	kind := "device or special file"
	if fi.Mode()&fs.ModeNamedPipe != 0 {
		kind = "named pipe"
	}
	return fmt.Errorf("%q %w (it is a %s)", name, errNotRegular, kind)
}

// uploadBody makes every read of an upload's body arrive within the idle
// timeout and the whole body within the upload timeout, through the
// connection's read deadline: an authenticated client cannot hold a
// goroutine, a file descriptor and a temporary file for ever by sending
// nothing, or one byte now and then. The deadline is the connection's own,
// so it touches no other request (the server resets it for the next one).
type uploadBody struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
	end  time.Time
}

func (s *Server) uploadBody(w http.ResponseWriter, body io.Reader) *uploadBody {
	return &uploadBody{r: body, rc: http.NewResponseController(w), idle: s.cfg.UploadIdleTimeout,
		end: time.Now().Add(s.cfg.UploadTimeout)}
}

func (u *uploadBody) Read(p []byte) (int, error) {
	d := time.Now().Add(u.idle)
	if d.After(u.end) {
		d = u.end
	}
	// An error means the writer cannot set deadlines (a test recorder):
	// then the server's own timeouts are all there is.
	_ = u.rc.SetReadDeadline(d)
	return u.r.Read(p)
}

// refuse answers a request that failed authorization, and closes its
// connection afterwards: a client without the token gets one answer per
// connection, and cannot keep the connection (and its goroutine) for the
// idle timeout, nor hold it by trickling a body the runner would otherwise
// drain before closing.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, err error) {
	w.Header().Set("Connection", "close")
	s.fail(w, r, code, err)
	// The answer is buffered: flush it, then fail any further read at once
	// so that draining the unread body cannot wait on the client.
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	_ = rc.SetReadDeadline(time.Now())
}
