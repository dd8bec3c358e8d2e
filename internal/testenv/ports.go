package testenv

import (
	"net"
	"testing"
)

// FreePort is a loopback TCP port nothing listened on a moment ago, for a
// server under test that takes a port number rather than a listener.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
