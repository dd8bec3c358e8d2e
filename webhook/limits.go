package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// MaxRequestBytes bounds an admission request body. The API server limits
// objects to about 3 MiB in etcd; an AdmissionReview carries the object (and
// for updates the old one), so anything larger is not a real request.
const MaxRequestBytes = 6 << 20

// LimitRequests answers 415 to a request that is not JSON and 413 to one
// over MaxRequestBytes, before next decodes anything. controller-runtime's
// own checks answer such requests with 200 and an error inside the review;
// a plain HTTP status is what a proxy or a load test expects.
func LimitRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "admission reviews are POSTed", http.StatusMethodNotAllowed)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			http.Error(w, fmt.Sprintf("content type %q is not application/json", r.Header.Get("Content-Type")),
				http.StatusUnsupportedMediaType)
			return
		}
		if r.ContentLength > MaxRequestBytes {
			http.Error(w, fmt.Sprintf("request body of %d bytes is over the limit of %d", r.ContentLength, MaxRequestBytes),
				http.StatusRequestEntityTooLarge)
			return
		}
		body, err := readBody(http.MaxBytesReader(w, r.Body, MaxRequestBytes), r.ContentLength)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, fmt.Sprintf("request body is over the limit of %d bytes", MaxRequestBytes),
					http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Type", "application/json") // controller-runtime compares the exact string
		next.ServeHTTP(w, r)
	})
}

// readBody reads a request body whose declared length is n (-1 or 0:
// unknown) into one buffer of that size, where io.ReadAll would grow one
// from 512 bytes, doubling.
func readBody(r io.Reader, n int64) ([]byte, error) {
	if n <= 0 {
		return io.ReadAll(r)
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}
