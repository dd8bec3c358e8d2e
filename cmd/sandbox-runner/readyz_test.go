package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestFirstReadyzIsTheStartedCommands is what the kubelet's first readiness
// probe of a wrapped container sees: it comes as soon as the container runs,
// so the test connects from the moment the runner process starts. The port
// refuses connections only until the runner listens (never once its
// "serving" line is out), and the first connection it accepts is answered
// only after the command's first start: /readyz says 200 for a command that
// starts fine, never 503 "command not running". In wrap mode and in server
// mode with restart policy Always (where /readyz follows the command), many
// times, since a race shows only now and then.
func TestFirstReadyzIsTheStartedCommands(t *testing.T) {
	t.Parallel()
	runs := 50
	if testing.Short() {
		runs = 10
	}
	for i := range runs {
		mode := []string{"--mode=wrap"}
		if i%2 == 1 {
			mode = []string{"--mode=server", "--restart-policy=Always"}
		}
		code, body, log := firstReadyz(t, mode)
		if code != http.StatusOK || body != "ok\n" {
			t.Fatalf("run %d (%s): first /readyz answered %d %q, want 200 \"ok\\n\"\nrunner log:\n%s", i, strings.Join(mode, " "), code, body, log)
		}
	}
}

// firstReadyz starts the runner with sleep as its command on a free
// loopback port, dials the port until it accepts, and returns the answer to
// GET /readyz on that first connection and the runner's log. It fails the
// test when a dial is refused after the runner logged "serving".
func firstReadyz(t *testing.T, modeArgs []string) (code int, body, log string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		addr := freeLoopbackAddr(t)
		args := append([]string{"run", "--listen=" + addr}, modeArgs...)
		cmd := exec.Command(runnerBin, append(args, "--", "sleep", "300")...)
		cmd.Env = append(os.Environ(), "SANDBOX_INSECURE_LOOPBACK=true")
		cmd.Dir = t.TempDir()
		errR, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var (
			mu      sync.Mutex
			logBuf  bytes.Buffer
			serving atomic.Bool
			exited  atomic.Bool
		)
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			sc := bufio.NewScanner(errR)
			for sc.Scan() {
				mu.Lock()
				logBuf.Write(sc.Bytes())
				logBuf.WriteByte('\n')
				mu.Unlock()
				if bytes.Contains(sc.Bytes(), []byte(`"msg":"serving"`)) {
					serving.Store(true)
				}
			}
		}()
		waited := make(chan struct{})
		go func() {
			<-readDone
			_ = cmd.Wait()
			exited.Store(true)
			close(waited)
		}()
		// stop ends the runner with SIGTERM, which ends its command too
		// (the command holds the log pipe open while it lives).
		stop := func() string {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-waited:
			case <-time.After(60 * time.Second):
				t.Errorf("runner did not stop on SIGTERM")
				killRunner(cmd.Process)
			}
			mu.Lock()
			defer mu.Unlock()
			return logBuf.String()
		}

		var conn net.Conn
		deadline := time.Now().Add(60 * time.Second)
	dial:
		for {
			logged := serving.Load() // read before the dial: the line was out when it was refused
			c, err := net.Dial("tcp", addr)
			switch {
			case err == nil:
				conn = c
				break dial
			case exited.Load():
				log := stop()
				if strings.Contains(log, "address already in use") && attempt < 5 {
					break dial // another process took the port in between: try another
				}
				t.Fatalf("runner exited before accepting a connection\n%s", log)
			case !errors.Is(err, syscall.ECONNREFUSED):
				t.Fatalf("dialing the runner: %v\n%s", err, stop())
			case logged:
				t.Fatalf("connection refused after the runner logged serving: %v\n%s", err, stop())
			case time.Now().After(deadline):
				t.Fatalf("runner never accepted a connection\n%s", stop())
			}
			time.Sleep(100 * time.Microsecond) // polling the port as a probe would find it
		}
		if conn == nil {
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := io.WriteString(conn, "GET /readyz HTTP/1.1\r\nHost: runner\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatalf("sending the probe: %v\n%s", err, stop())
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("reading the probe's answer: %v\n%s", err, stop())
		}
		b, err := io.ReadAll(resp.Body)
		conn.Close()
		if err != nil {
			t.Fatalf("reading the probe's answer: %v\n%s", err, stop())
		}
		return resp.StatusCode, string(b), stop()
	}
}

// freeLoopbackAddr is a loopback address whose port was free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
