package security

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sandbox.io/injector/internal/testenv"
	"sandbox.io/injector/runner/api"
	"sandbox.io/injector/runner/client"
)

// The runner binary is built once, on first use, from cmd/sandbox-runner
// with the shipped build tags.
var (
	runnerOnce sync.Once
	runnerBin  string
	runnerErr  error
	runnerDir  string
)

func runnerBinary(t *testing.T) string {
	t.Helper()
	runnerOnce.Do(func() {
		root, err := testenv.RepoRoot()
		if err != nil {
			runnerErr = err
			return
		}
		runnerDir, err = os.MkdirTemp("", "security-runner-")
		if err != nil {
			runnerErr = err
			return
		}
		runnerBin = filepath.Join(runnerDir, "sandbox-runner")
		build := exec.Command("go", "build", "-trimpath", "-tags", "nethttpomithttp2", "-o", runnerBin, "./cmd/sandbox-runner")
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			runnerErr = fmt.Errorf("building sandbox-runner: %w\n%s", err, out)
		}
	})
	if runnerErr != nil {
		t.Fatal(runnerErr)
	}
	return runnerBin
}

func cleanupRunnerBinary() {
	if runnerDir != "" {
		os.RemoveAll(runnerDir)
	}
}

// runnerToken is the API token of every runner the suite starts.
const runnerToken = "security-suite-token-0123456789"

// liveRunner is a started sandbox-runner.
type liveRunner struct {
	addr    string // host:port
	workdir string
	client  *client.Client
	stderr  *bytes.Buffer
}

// startRunner starts the real binary on loopback with a token and the
// given extra flags, and waits for it to serve.
func startRunner(t *testing.T, flags ...string) *liveRunner {
	t.Helper()
	bin := runnerBinary(t)
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte(runnerToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	args := append([]string{"run", "--listen=127.0.0.1:0", "--token-file=" + tok, "--workdir=" + work}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	errR, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log bytes.Buffer
	addrc := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(errR)
		for sc.Scan() {
			line := sc.Bytes()
			mu.Lock()
			log.Write(line)
			log.WriteByte('\n')
			mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "serving" && rec.Addr != "" {
				select {
				case addrc <- rec.Addr:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("runner log:\n%s", log.String())
			mu.Unlock()
		}
	})
	select {
	case addr := <-addrc:
		return &liveRunner{addr: addr, workdir: work, client: client.New("http://"+addr, runnerToken, nil), stderr: &log}
	case <-done:
		t.Fatalf("runner exited before serving:\n%s", log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("runner did not serve within 60s:\n%s", log.String())
	}
	return nil
}

// raw sends one request on a new connection, with the token when auth is
// true, and returns the status and body. The connection's deadline (30s)
// only keeps a regression from hanging the suite.
func (r *liveRunner) raw(t *testing.T, method, target, body string, auth bool) (int, string, error) {
	t.Helper()
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	hdr := ""
	if auth {
		hdr = "Authorization: Bearer " + runnerToken + "\r\n"
	}
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%sContent-Length: %d\r\n\r\n%s", method, target, hdr, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: no answer: %w", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestRunnerAttacks replays the attacks on the runner's API that the
// hostile review reproduced on the binary.
func TestRunnerAttacks(t *testing.T) {
	r := startRunner(t, "--upload-idle-timeout=1s", "--upload-timeout=3s")
	if err := syscall.Mkfifo(filepath.Join(r.workdir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}

	attack(t, "runner", "GET /files of a FIFO blocks an OS thread", func(t *testing.T) error {
		for _, target := range []string{"/files/fifo", "/files?dir=fifo"} {
			code, body, err := r.raw(t, "GET", target, "", true)
			if err != nil {
				return fmt.Errorf("GET %s did not answer (blocked): %w", target, err)
			}
			if code != http.StatusBadRequest {
				return fmt.Errorf("GET %s answered %d %s, not a refusal", target, code, body)
			}
		}
		return nil
	})

	attack(t, "runner", "many parallel GETs of a FIFO exhaust threads", func(t *testing.T) error {
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for range 200 {
			wg.Go(func() {
				if code, body, err := r.raw(t, "GET", "/files/fifo", "", true); err != nil {
					errs <- fmt.Errorf("GET /files/fifo: %w", err)
				} else if code != http.StatusBadRequest {
					errs <- fmt.Errorf("GET /files/fifo: %d %s", code, body)
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		if _, err := r.client.Status(t.Context()); err != nil {
			return fmt.Errorf("runner unusable afterwards: %w", err)
		}
		return nil
	})

	pwned := filepath.Join(r.workdir, "pwned")
	execRefused := func(body string) func(t *testing.T) error {
		return func(t *testing.T) error {
			code, resp, err := r.raw(t, "POST", "/execute", body, true)
			if err != nil {
				return err
			}
			if _, statErr := os.Stat(pwned); statErr == nil {
				os.Remove(pwned)
				return fmt.Errorf("the body %s ran a command (%d %s)", body, code, resp)
			}
			if code != http.StatusBadRequest {
				return fmt.Errorf("the body %s answered %d %s, not 400", body, code, resp)
			}
			return nil
		}
	}
	attack(t, "runner", "timeout_ms that overflows into an immediate timeout", func(t *testing.T) error {
		code, body, err := r.raw(t, "POST", "/execute", `{"argv":["true"],"timeout_ms":9223372036855}`, true)
		if err != nil {
			return err
		}
		if code != http.StatusBadRequest || !strings.Contains(body, "timeout_ms") {
			return fmt.Errorf("answered %d %s, not a 400 naming timeout_ms", code, body)
		}
		return nil
	})
	attack(t, "runner", "JSON field names in another case", execRefused(`{"SHELL":"touch pwned"}`))
	attack(t, "runner", "JSON duplicate keys, the last one wins", execRefused(`{"shell":"true","shell":"touch pwned"}`))
	attack(t, "runner", "JSON duplicate keys differing in case", execRefused(`{"shell":"true","Shell":"touch pwned"}`))
	attack(t, "runner", "JSON unknown fields", execRefused(`{"shell":"touch pwned","user":"root"}`))
	attack(t, "runner", "JSON trailing data", execRefused(`{"shell":"true"}{"shell":"touch pwned"}`))
	attack(t, "runner", "JSON duplicate claim token digests, the last one wins", func(t *testing.T) error {
		// A warm runner that knows only the verifier of its claim credential.
		const credential = "claim-credential-0123456789abcdef"
		sum := sha256.Sum256([]byte(credential))
		warm := startRunner(t, "--claim-verifier=sha256:"+hex.EncodeToString(sum[:]))
		a, b := sha256.Sum256([]byte("innocent")), sha256.Sum256([]byte("attacker"))
		body := fmt.Sprintf(`{"protocol":%d,"token_sha256":%q,"token_sha256":%q}`, api.ClaimProtocol, hex.EncodeToString(a[:]), hex.EncodeToString(b[:]))
		conn, err := net.Dial("tcp", warm.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(conn, "POST /claim HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", credential, len(body), body)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return fmt.Errorf("no answer: %w", err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			return fmt.Errorf("claim with two token digests answered %d %s", resp.StatusCode, msg)
		}
		return nil
	})

	attack(t, "runner", "PUT over an existing directory", func(t *testing.T) error {
		if err := os.MkdirAll(filepath.Join(r.workdir, "dir", "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		code, body, err := r.raw(t, "PUT", "/files/dir", "x", true)
		if err != nil {
			return err
		}
		if code != http.StatusConflict {
			return fmt.Errorf("answered %d %s, not 409", code, body)
		}
		return nil
	})

	for _, req := range []struct{ name, text string }{
		{"no token", "GET /status HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"wrong token", "GET /status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\r\n"},
		{"announced body never sent", "PUT /files/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc"},
	} {
		attack(t, "runner", "unauthenticated connection kept open after its 401 ("+req.name+")", func(t *testing.T) error {
			conn, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.WriteString(conn, req.text); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return fmt.Errorf("no answer: %w", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				return fmt.Errorf("answered %d, not 401", resp.StatusCode)
			}
			if _, err := br.ReadByte(); err == nil {
				return errors.New("the connection stayed open after the 401 (and sent more)")
			} else if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("the connection stayed open after the 401: %w", err)
			}
			return nil
		})
	}

	attack(t, "runner", "authenticated upload that stalls holds the connection", func(t *testing.T) error {
		conn, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(conn, "PUT /files/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\nabc", runnerToken)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return fmt.Errorf("the stalled upload was never cut: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			return fmt.Errorf("answered %d, not 408", resp.StatusCode)
		}
		return nil
	})

	attack(t, "runner", "authenticated upload that trickles past the upload timeout", func(t *testing.T) error {
		conn, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(conn, "PUT /files/trickle HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n", runnerToken)
		answered := make(chan *http.Response, 1)
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err == nil {
				resp.Body.Close()
			}
			answered <- resp
		}()
		// One byte every 200ms never trips the 1s idle timeout; only the
		// whole-body timeout (3s) ends it.
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case resp := <-answered:
				if resp == nil || resp.StatusCode != http.StatusRequestTimeout {
					return fmt.Errorf("trickled upload answered %v, not 408", resp)
				}
				return nil
			case <-tick.C:
				if _, err := conn.Write([]byte("x")); err != nil {
					// Closed by the runner: wait for its answer.
					continue
				}
			case <-t.Context().Done():
				return errors.New("test ended")
			}
		}
	})
}

// TestRunnerStreamOutlivesTimeouts checks that no timeout the hardening
// added cuts a long streamed /execute: an NDJSON stream that runs longer
// than the upload timeouts (and would outlive a write timeout) arrives
// whole. It is a guard for the defences, not an attack.
func TestRunnerStreamOutlivesTimeouts(t *testing.T) {
	r := startRunner(t, "--upload-idle-timeout=1s", "--upload-timeout=2s")
	var stdout bytes.Buffer
	res, err := r.client.ExecuteStream(t.Context(), api.ExecuteRequest{
		Shell: "for i in 1 2 3 4 5; do echo line$i; sleep 1; done",
	}, &stdout, io.Discard)
	if err != nil {
		t.Fatalf("stream cut: %v (got %q)", err, stdout.String())
	}
	if res.ExitCode != 0 || stdout.String() != "line1\nline2\nline3\nline4\nline5\n" {
		t.Fatalf("stream exit %d, output %q; want all five lines", res.ExitCode, stdout.String())
	}
}
