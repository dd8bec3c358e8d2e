package testenv

import (
	"bytes"
	"strings"
	"sync"
)

// SyncBuffer is a bytes.Buffer that a writer (a logger, a command's output
// in another goroutine) and a test reading it may share.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// CountLines is how many lines written so far hold substr.
func (s *SyncBuffer) CountLines(substr string) int {
	n := 0
	for line := range strings.Lines(s.String()) {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}
