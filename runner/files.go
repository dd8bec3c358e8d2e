package runner

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"sandbox.io/injector/runner/api"
)

// files serves /files, confined to the work directory by an os.Root: every
// open is resolved component by component below the root, so neither "..",
// absolute paths, encoded separators nor symlinks (also swapped in during a
// request) can reach outside it.

// resolve turns the {path} of a request into a path below the root.
func resolve(p string) (string, error) {
	clean, err := api.CleanPath(p)
	if err != nil {
		return "", err
	}
	return clean, nil
}

// putFile writes the body to path atomically: a temporary file in the same
// directory, renamed over the target once complete, so readers never see a
// half-written file. Parents are created. ?mode=0755 sets the permissions
// (default 0644).
func (s *Server) putFile(w http.ResponseWriter, r *http.Request) {
	name, err := resolve(r.PathValue("path"))
	if err != nil || name == "." {
		if err == nil {
			err = errors.New("a file name is required")
		}
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	mode := fs.FileMode(0o644)
	if m := r.URL.Query().Get("mode"); m != "" {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil || v > 0o777 {
			s.fail(w, r, http.StatusBadRequest, fmt.Errorf("mode %q is not an octal permission like 0644", m))
			return
		}
		mode = fs.FileMode(v)
	}
	if fi, err := s.root.Lstat(name); err == nil && fi.IsDir() {
		s.fail(w, r, http.StatusConflict, fmt.Errorf("%q is a directory; delete it first (DELETE /files/%s?recursive=true) to put a file there", name, name))
		return
	}
	if dir := path.Dir(name); dir != "." {
		if err := s.root.MkdirAll(dir, 0o755); err != nil {
			s.fail(w, r, fsStatus(err), fmt.Errorf("creating parent directories of %q: %w", name, err))
			return
		}
	}
	tmp := path.Join(path.Dir(name), ".sandbox-upload-"+randomSuffix())
	f, err := s.root.OpenFile(tmp, syscallFlags(), mode)
	if err != nil {
		s.fail(w, r, fsStatus(err), fmt.Errorf("creating %q: %w", name, err))
		return
	}
	body := s.uploadBody(w, http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes))
	n, err := io.Copy(f, body)
	if err == nil {
		err = f.Chmod(mode) // the umask may have narrowed it
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && !s.stillValid(r) {
		err = errStaleRequest
	}
	if err == nil {
		err = s.root.Rename(tmp, name)
	}
	if err != nil {
		_ = s.root.Remove(tmp)
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			s.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("upload is larger than the limit of %d bytes", mbe.Limit))
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.fail(w, r, http.StatusRequestTimeout, fmt.Errorf("upload of %q too slow: see --upload-idle-timeout %s, --upload-timeout %s", name, s.cfg.UploadIdleTimeout, s.cfg.UploadTimeout))
			return
		}
		s.fail(w, r, fsStatus(err), fmt.Errorf("writing %q: %w", name, err))
		return
	}
	s.metrics.bytesIn.Add(uint64(n))
	w.WriteHeader(http.StatusNoContent)
}

func syscallFlags() int {
	return syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL | syscall.O_CLOEXEC
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// getFile streams a file (Range requests work).
func (s *Server) getFile(w http.ResponseWriter, r *http.Request) {
	name, err := resolve(r.PathValue("path"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	f, fi, err := s.openForRead(name)
	if err != nil {
		s.fail(w, r, fsStatus(err), fmt.Errorf("opening %q: %w", name, err))
		return
	}
	defer f.Close()
	if fi.IsDir() {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("%q is a directory; list it with GET /files?dir=%s", name, name))
		return
	}
	if !fi.Mode().IsRegular() {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("%q is not a regular file", name))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", fi.ModTime(), f)
	s.metrics.bytesOut.Add(uint64(cw.n))
}

// countingWriter counts the body bytes and keeps sendfile: ReadFrom goes to
// the connection's own ReadFrom.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(c.ResponseWriter, r)
	c.n += n
	return n, err
}

// deleteFile removes a file or an empty directory; ?recursive=true removes
// a directory with its contents.
func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request) {
	name, err := resolve(r.PathValue("path"))
	if err != nil || name == "." {
		if err == nil {
			err = errors.New("refusing to delete the work directory itself")
		}
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	if _, err := s.root.Lstat(name); err != nil {
		s.fail(w, r, fsStatus(err), fmt.Errorf("deleting %q: %w", name, err))
		return
	}
	if r.URL.Query().Get("recursive") == "true" {
		err = s.root.RemoveAll(name)
	} else {
		err = s.root.Remove(name)
	}
	if err != nil {
		s.fail(w, r, fsStatus(err), fmt.Errorf("deleting %q: %w", name, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listFiles answers GET /files?dir=D with the entries of D, sorted by name.
// Symlinks are listed, not followed.
func (s *Server) listFiles(w http.ResponseWriter, r *http.Request) {
	name, err := resolve(r.URL.Query().Get("dir"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	d, _, err := s.openForRead(name)
	if err != nil {
		s.fail(w, r, fsStatus(err), fmt.Errorf("opening directory %q: %w", name, err))
		return
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		s.fail(w, r, fsStatus(err), fmt.Errorf("listing %q: %w", name, err))
		return
	}
	out := make([]api.FileInfo, 0, len(entries))
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			continue // removed while listing
		}
		out = append(out, api.FileInfo{
			Name:    e.Name(),
			Size:    fi.Size(),
			Dir:     fi.IsDir(),
			Mode:    fmt.Sprintf("%04o", fi.Mode().Perm()),
			Symlink: fi.Mode()&fs.ModeSymlink != 0,
			Mtime:   fi.ModTime().UTC(),
		})
	}
	slices.SortFunc(out, func(a, b api.FileInfo) int { return strings.Compare(a.Name, b.Name) })
	s.writeJSON(w, http.StatusOK, out)
}

// fsStatus maps a file system error to an HTTP status.
func fsStatus(err error) int {
	var pe *fs.PathError
	switch {
	case errors.Is(err, errNotRegular):
		return http.StatusBadRequest
	case errors.Is(err, errStaleRequest):
		return http.StatusUnauthorized
	case errors.Is(err, fs.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, fs.ErrPermission):
		return http.StatusForbidden
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.ENOTEMPTY),
		errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.EEXIST):
		return http.StatusConflict
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return http.StatusInsufficientStorage
	case errors.Is(err, syscall.EROFS):
		return http.StatusForbidden
	case errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes"):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}
