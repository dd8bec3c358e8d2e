// Package client is a small Go client of the sandbox runner's HTTP API
// (package runner), on the standard library only. The e2e suite, the node
// agent and sandboxctl use it. The wire types are those of runner/api.
//
//	c := client.New("http://127.0.0.1:7080", token, nil)
//	res, err := c.Execute(ctx, api.ExecuteRequest{Argv: []string{"uname", "-a"}})
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"sandbox.io/injector/runner/api"
)

// Client talks to one runner. Its fields may be set directly; the zero
// HTTPClient means http.DefaultClient.
type Client struct {
	// BaseURL is the runner's address, like "http://10.0.0.7:7080".
	BaseURL string
	// Token is sent as "Authorization: Bearer <token>" when not empty, or
	// in api.TokenHeader when ViaProxy is set.
	Token string
	// ViaProxy sends the token in api.TokenHeader instead of Authorization,
	// for a runner reached through the Kubernetes API server's pod proxy
	// (BaseURL like https://apiserver/api/v1/namespaces/NS/pods/POD:7080/proxy
	// and an HTTPClient carrying the API server's credentials).
	ViaProxy bool
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// New returns a client of the runner at baseURL.
func New(baseURL, token string, hc *http.Client) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTPClient: hc}
}

// Error is a non-2xx answer of the runner.
type Error struct {
	// StatusCode is the HTTP status, like 401 or 413.
	StatusCode int
	// Message is the runner's explanation.
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("runner answered %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// StatusCode returns the HTTP status of a runner refusal wrapped in err, or
// 0 when err is not one.
func StatusCode(err error) int {
	if e := (*Error)(nil); errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, fmt.Errorf("building %s %s request: %w", method, path, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	switch {
	case c.Token == "":
	case c.ViaProxy:
		req.Header.Set(api.TokenHeader, c.Token)
	default:
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e api.Error
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, &Error{StatusCode: resp.StatusCode, Message: msg})
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decoding the answer of GET %s: %w", path, err)
	}
	return nil
}

// Healthz returns nil when the runner answers its liveness probe.
func (c *Client) Healthz(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodGet, api.PathHealthz, nil, nil)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// Status returns the runner's mode, version and supervised command.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var st api.Status
	if err := c.getJSON(ctx, api.PathStatus, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Execute runs a command and returns its result with the captured output.
func (c *Client) Execute(ctx context.Context, req api.ExecuteRequest) (*api.ExecuteResult, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding execute request: %w", err)
	}
	resp, err := c.do(ctx, http.MethodPost, api.PathExecute, bytes.NewReader(b), http.Header{"Content-Type": {api.ContentTypeJSON}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var res api.ExecuteResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return nil, fmt.Errorf("decoding execute result: %w", err)
	}
	return &res, nil
}

// Claim hands a warm sandbox to its claimant: the runner switches to the
// token whose digest is req.TokenSHA256 and adds req.Env to every later
// /execute. The client must hold the pod's claim credential (only the claim
// controller can compute it); afterwards, set c.Token to the claimant's
// token. A second claim of the same runner is refused with 409 Conflict.
func (c *Client) Claim(ctx context.Context, req api.ClaimRequest) (*api.ClaimStatus, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding claim request: %w", err)
	}
	resp, err := c.do(ctx, http.MethodPost, api.PathClaim, bytes.NewReader(b), http.Header{"Content-Type": {api.ContentTypeJSON}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st api.ClaimStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("decoding claim answer: %w", err)
	}
	return &st, nil
}

// ExecuteStream runs a command and copies its output to stdout and stderr
// (either may be nil to drop it) as it arrives; it returns the final result,
// whose Stdout and Stderr are empty. Cancelling ctx kills the command.
func (c *Client) ExecuteStream(ctx context.Context, req api.ExecuteRequest, stdout, stderr io.Writer) (*api.ExecuteResult, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding execute request: %w", err)
	}
	resp, err := c.do(ctx, http.MethodPost, api.PathExecute, bytes.NewReader(b), http.Header{
		"Content-Type": {api.ContentTypeJSON},
		"Accept":       {api.ContentTypeNDJSON},
	})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var ev api.StreamEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("decoding execute stream line: %w", err)
		}
		if ev.ExecuteResult != nil && ev.Stream == "" {
			return ev.ExecuteResult, nil
		}
		w := stdout
		if ev.Stream == api.StreamStderr {
			w = stderr
		}
		if w != nil {
			if _, err := io.WriteString(w, ev.Data); err != nil {
				return nil, fmt.Errorf("writing %s: %w", ev.Stream, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading execute stream: %w", err)
	}
	return nil, errors.New("reading execute stream: ended without a result")
}

// filePath escapes each element of a path below /files/.
func filePath(p string) string {
	elems := strings.Split(strings.TrimLeft(p, "/"), "/")
	for i, e := range elems {
		elems[i] = url.PathEscape(e)
	}
	return api.PathFiles + "/" + strings.Join(elems, "/")
}

// PutFile uploads r to path (relative to the runner's work directory),
// creating parent directories; mode 0 means 0644.
func (c *Client) PutFile(ctx context.Context, path string, r io.Reader, mode uint32) error {
	p := filePath(path)
	if mode != 0 {
		p += fmt.Sprintf("?mode=%04o", mode)
	}
	resp, err := c.do(ctx, http.MethodPut, p, r, http.Header{"Content-Type": {"application/octet-stream"}})
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// GetFile downloads path; the caller closes the reader.
func (c *Client) GetFile(ctx context.Context, path string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, filePath(path), nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// DeleteFile removes a file or empty directory; recursive removes a
// directory with its contents.
func (c *Client) DeleteFile(ctx context.Context, path string, recursive bool) error {
	p := filePath(path)
	if recursive {
		p += "?recursive=true"
	}
	resp, err := c.do(ctx, http.MethodDelete, p, nil, nil)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// List returns the entries of dir ("" for the work directory).
func (c *Client) List(ctx context.Context, dir string) ([]api.FileInfo, error) {
	var out []api.FileInfo
	if err := c.getJSON(ctx, api.PathFiles+"?dir="+url.QueryEscape(dir), &out); err != nil {
		return nil, err
	}
	return out, nil
}
