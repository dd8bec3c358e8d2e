package runner

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"sandbox.io/injector/runner/api"
)

// slowSink is a client that stalls on its first chunk of stdout for longer
// than drainAfterExit, as a slow network peer does.
type slowSink struct {
	stall time.Duration
	mu    sync.Mutex
	out   strings.Builder
}

func (s *slowSink) write(stream string, p []byte) {
	s.mu.Lock()
	first := s.out.Len() == 0
	s.mu.Unlock()
	if stream == api.StreamStdout && first {
		time.Sleep(s.stall)
	}
	s.mu.Lock()
	s.out.Write(p)
	s.mu.Unlock()
}

// TestSlowClientGetsAllOutput: a command that writes less than a pipe holds
// exits at once, leaving its output in the pipe; the client is slower than
// drainAfterExit on the first chunk. Every byte still arrives: drain's cut
// only stops waiting for more, it never drops what the command wrote.
func TestSlowClientGetsAllOutput(t *testing.T) {
	procs := newProcTable(false)
	t.Cleanup(procs.close)
	e := &executor{shell: shellPath, procs: procs}
	const total = 60_000 // under a pipe's 64 KiB: the command never waits for the reader
	s := &slowSink{stall: 5 * drainAfterExit}
	req := &api.ExecuteRequest{}
	res := e.run(context.Background(), execution{req: req, sink: s}, []string{"/bin/sh", "-c", "head -c 60000 /dev/zero | tr '\\0' x"}, t.TempDir(), []string{"PATH=/usr/bin:/bin"})
	if res.ExitCode != 0 || res.Error != "" {
		t.Fatalf("exit %d, error %q", res.ExitCode, res.Error)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := s.out.Len(); got != total || strings.Trim(s.out.String(), "x") != "" {
		t.Fatalf("the client got %d bytes of stdout, want all %d", got, total)
	}
}

// TestBackgroundWriterCannotHoldTheRequest: a command that exits while a
// background process it started writes on forever returns once drain's
// cut and the bounded read of what is left (leftAfterExit) are done.
func TestBackgroundWriterCannotHoldTheRequest(t *testing.T) {
	procs := newProcTable(false)
	t.Cleanup(procs.close)
	e := &executor{shell: shellPath, procs: procs}
	s := &slowSink{}
	done := make(chan api.ExecuteResult, 1)
	go func() {
		done <- e.run(context.Background(), execution{req: &api.ExecuteRequest{}, sink: s},
			[]string{"/bin/sh", "-c", "(yes &) ; exit 0"}, t.TempDir(), []string{"PATH=/usr/bin:/bin"})
	}()
	select {
	case res := <-done:
		if res.ExitCode != 0 {
			t.Fatalf("exit %d", res.ExitCode)
		}
	case <-time.After(time.Minute):
		t.Fatal("the request is still open a minute after its command exited")
	}
	// Closing the pipes at the end of the request ends yes (SIGPIPE).
}
