package simnet

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestDialerMapsOnlyToLoopback(t *testing.T) {
	var d Dialer
	pod := netip.MustParseAddrPort("10.244.3.7:7080")
	cases := []struct {
		name     string
		from, to string
	}{
		{"target on the network", "10.244.3.7:7080", "10.244.3.8:7080"},
		{"target on a public address", "10.244.3.7:7080", "192.0.2.1:80"},
		{"target on IPv6 loopback", "10.244.3.7:7080", "[::1]:7080"},
		{"target unspecified", "10.244.3.7:7080", "0.0.0.0:7080"},
		{"target without a port", "10.244.3.7:7080", "127.0.0.1:0"},
		{"IPv6 simulated address", "[fd00::7]:7080", "127.0.0.1:7080"},
		{"IPv4-in-IPv6 simulated address", "[::ffff:10.244.3.7]:7080", "127.0.0.1:7080"},
		{"simulated address without a port", "10.244.3.7:0", "127.0.0.1:7080"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := d.Map(netip.MustParseAddrPort(tc.from), netip.MustParseAddrPort(tc.to))
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("Map(%s, %s) = %v, want ErrRefused", tc.from, tc.to, err)
			}
		})
	}
	if err := d.Map(netip.AddrPort{}, netip.MustParseAddrPort("127.0.0.1:1")); !errors.Is(err, ErrRefused) {
		t.Fatalf("Map of the zero address = %v, want ErrRefused", err)
	}
	if d.Len() != 0 {
		t.Fatalf("%d routes after refused maps, want 0", d.Len())
	}
	if err := d.Map(pod, netip.MustParseAddrPort("127.0.0.2:7080")); err != nil {
		t.Fatalf("mapping to 127.0.0.2: %v", err)
	}
}

func TestDialerRefusesWhatIsNotMapped(t *testing.T) {
	var d Dialer
	if err := d.Map(netip.MustParseAddrPort("10.244.3.7:7080"), netip.MustParseAddrPort("127.0.0.1:9")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, network, addr string
	}{
		{"unmapped address", "tcp", "10.244.3.8:7080"},
		{"mapped address, other port", "tcp", "10.244.3.7:7081"},
		{"loopback itself", "tcp", "127.0.0.1:9"},
		{"a public address", "tcp", "192.0.2.1:443"},
		{"host name", "tcp", "localhost:7080"},
		{"host name of a pod", "tcp", "pod-1.default.svc:7080"},
		{"udp to a mapped address", "udp", "10.244.3.7:7080"},
		{"udp4", "udp4", "10.244.3.7:7080"},
		{"tcp6", "tcp6", "10.244.3.7:7080"},
		{"ipv6", "tcp", "[fd00::7]:7080"},
		{"ipv6 loopback", "tcp", "[::1]:7080"},
		{"ipv4 in ipv6", "tcp", "[::ffff:10.244.3.7]:7080"},
		{"unix socket", "unix", "/run/x.sock"},
		{"no port", "tcp", "10.244.3.7"},
		{"empty", "tcp", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := d.Refused()
			conn, err := d.DialContext(t.Context(), tc.network, tc.addr)
			if conn != nil {
				_ = conn.Close()
			}
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("DialContext(%s, %q) = %v, want ErrRefused", tc.network, tc.addr, err)
			}
			if d.Refused() != before+1 {
				t.Fatalf("refused count %d, want %d", d.Refused(), before+1)
			}
		})
	}
	var zero Dialer
	if _, err := zero.DialContext(t.Context(), "tcp", "10.244.3.7:7080"); !errors.Is(err, ErrRefused) {
		t.Fatalf("the zero Dialer dialed: %v", err)
	}
}

func TestDialerReachesTheStandIn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "stand-in for "+r.Host)
	}))
	t.Cleanup(srv.Close)
	standIn := netip.MustParseAddrPort(srv.Listener.Addr().String())

	var d Dialer
	pod := netip.MustParseAddrPort("10.244.3.7:7080")
	if err := d.Map(pod, standIn); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, Proxy: nil}}
	resp, err := client.Get("http://10.244.3.7:7080/claim")
	if err != nil {
		t.Fatalf("GET through the dialer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "stand-in for 10.244.3.7:7080" {
		t.Fatalf("body %q", body)
	}
	if _, err := client.Get("http://10.244.3.8:7080/claim"); !errors.Is(err, ErrRefused) {
		t.Fatalf("GET of an unmapped pod: %v, want ErrRefused", err)
	}

	d.Unmap(pod)
	client.CloseIdleConnections()
	if _, err := client.Get("http://10.244.3.7:7080/claim"); !errors.Is(err, ErrRefused) {
		t.Fatalf("GET after Unmap: %v, want ErrRefused", err)
	}
}

func TestDialerReportsADeadStandIn(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := netip.MustParseAddrPort(ln.Addr().String())
	_ = ln.Close()
	var d Dialer
	if err := d.Map(netip.MustParseAddrPort("10.244.3.7:7080"), dead); err != nil {
		t.Fatal(err)
	}
	_, err = d.DialContext(t.Context(), "tcp", "10.244.3.7:7080")
	if err == nil || errors.Is(err, ErrRefused) {
		t.Fatalf("dial of a closed stand-in = %v, want a connection error", err)
	}
}
