package webhook

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLimitRequests(t *testing.T) {
	t.Parallel()
	var gotBody int
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody = len(b)
		w.WriteHeader(http.StatusOK)
	})
	h := LimitRequests(next)
	tests := []struct {
		name        string
		method      string
		contentType string
		body        io.Reader
		length      int64 // -1: unknown (chunked)
		want        int
	}{
		{"json", http.MethodPost, "application/json", strings.NewReader("{}"), 2, http.StatusOK},
		{"json with charset", http.MethodPost, "application/json; charset=utf-8", strings.NewReader("{}"), 2, http.StatusOK},
		{"yaml", http.MethodPost, "application/yaml", strings.NewReader("{}"), 2, http.StatusUnsupportedMediaType},
		{"no content type", http.MethodPost, "", strings.NewReader("{}"), 2, http.StatusUnsupportedMediaType},
		{"get", http.MethodGet, "application/json", nil, 0, http.StatusMethodNotAllowed},
		{"declared too large", http.MethodPost, "application/json", strings.NewReader("{}"), MaxRequestBytes + 1, http.StatusRequestEntityTooLarge},
		{"streamed too large", http.MethodPost, "application/json", bytes.NewReader(make([]byte, MaxRequestBytes+1)), -1, http.StatusRequestEntityTooLarge},
		{"exactly at the limit", http.MethodPost, "application/json", bytes.NewReader(make([]byte, MaxRequestBytes)), -1, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, Path, tc.body)
			req.ContentLength = tc.length
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("status %d, want %d (%s)", rec.Code, tc.want, rec.Body.String())
			}
		})
	}
	if gotBody != MaxRequestBytes {
		t.Errorf("the handler behind saw %d bytes of the last request, want %d", gotBody, MaxRequestBytes)
	}
}
