package entrypoint

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"sandbox.io/injector/internal/testregistry"
)

func TestAddressClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr  string
		class string
		never bool
	}{
		{"169.254.169.254", "link-local", true},
		{"::ffff:169.254.169.254", "link-local", true},
		{"64:ff9b::a9fe:a9fe", "link-local", true}, // NAT64 form of 169.254.169.254
		{"fe80::1", "link-local", true},
		{"100.100.100.200", "metadata", true},
		{"fd00:ec2::254", "metadata", true},
		{"0.0.0.0", "unicast", true},
		{"::", "unicast", true},
		{"239.1.1.1", "unicast", true},
		{"127.0.0.1", "loopback", false},
		{"::1", "loopback", false},
		{"10.1.2.3", "private", false},
		{"172.16.0.1", "private", false},
		{"192.168.1.1", "private", false},
		{"100.64.0.1", "private", false},
		{"fd12::1", "private", false},
		{"93.184.216.34", "", false},
		{"2606:4700::1", "", false},
	}
	for _, tc := range tests {
		class, never := addressClass(netip.MustParseAddr(tc.addr))
		if never != tc.never || !strings.Contains(class, tc.class) || (tc.class == "") != (class == "") {
			t.Errorf("%s: class %q never %v, want %q never %v", tc.addr, class, never, tc.class, tc.never)
		}
	}
}

// TestLookupsRefuseInternalAddresses replays a pod author who names images
// on the webhook's own network: a loopback registry (standing for any
// private address) is not contacted unless allowed, a name that resolves to
// loopback is judged by the address it resolves to, and metadata addresses
// are refused even with every private address allowed. Refusals happen
// before a connection is made.
func TestLookupsRefuseInternalAddresses(t *testing.T) {
	t.Parallel()
	reg := testregistry.New(t)
	ref, _ := push(t, reg, "app", []string{"/app"}, nil)
	_, port, _ := net.SplitHostPort(reg.Host)

	t.Run("loopback registry refused by default, nothing asked", func(t *testing.T) {
		before := reg.Requests()
		_, err := NewResolver(Config{}).Resolve(t.Context(), ref, amd64, nil)
		if !errors.Is(err, ErrAddressRefused) || !strings.Contains(err.Error(), "--registry-allow-private") {
			t.Fatalf("got %v, want ErrAddressRefused naming the flag", err)
		}
		if reg.Requests() != before {
			t.Error("the registry was asked although its address is refused")
		}
	})
	t.Run("a name resolving to loopback is judged by its address", func(t *testing.T) {
		// Allowing 127.0.0.1:port does not allow another name for it.
		r := NewResolver(Config{Insecure: []string{reg.Host}})
		_, err := r.Resolve(t.Context(), "localhost:"+port+"/app:v1", amd64, nil)
		if !errors.Is(err, ErrAddressRefused) {
			t.Fatalf("got %v, want ErrAddressRefused", err)
		}
	})
	t.Run("listed as insecure: allowed", func(t *testing.T) {
		if _, err := NewResolver(Config{Insecure: []string{reg.Host}}).Resolve(t.Context(), ref, amd64, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("private addresses allowed: allowed", func(t *testing.T) {
		if _, err := NewResolver(Config{AllowPrivate: true}).Resolve(t.Context(), ref, amd64, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("metadata refused even with private addresses allowed", func(t *testing.T) {
		// Judged by Check, the dialer's hook, so that no test ever sends a
		// packet towards a metadata service, even if the check regressed.
		p := AddressPolicy{AllowPrivate: true, AllowedHosts: []string{"169.254.169.254", "169.254.169.254:80"}}
		for _, addr := range []string{"169.254.169.254:443", "169.254.169.254:80", "[fd00:ec2::254]:80", "100.100.100.200:443", "[::ffff:169.254.169.254]:80"} {
			err := p.Check("metadata:80", addr)
			if !errors.Is(err, ErrAddressRefused) || !strings.Contains(err.Error(), "never reach") {
				t.Errorf("%s: got %v, want ErrAddressRefused (never)", addr, err)
			}
		}
	})
}

// TestDialChecksEveryConnect checks at the dialer that the address is
// judged when connecting, not when the name was resolved first: the
// policy's Control sees the address of the socket itself.
func TestDialChecksEveryConnect(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	p := AddressPolicy{AllowedHosts: []string{"127.0.0.1:" + port}}
	if _, err := p.DialContext(t.Context(), "tcp", "localhost:"+port); !errors.Is(err, ErrAddressRefused) {
		t.Errorf("dialing localhost: %v, want ErrAddressRefused", err)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the refused dial connected (%d accepted)", n)
	}
	c, err := p.DialContext(t.Context(), "tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("dialing the allowed host: %v", err)
	}
	c.Close()
}
