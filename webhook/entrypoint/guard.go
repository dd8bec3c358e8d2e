package entrypoint

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ErrAddressRefused is wrapped by every dial the Resolver's default
// transport refuses: pod authors name the registries, so without it the
// webhook would connect wherever they like inside its own network (cloud
// metadata services, the API server's etcd, any internal service) and
// report what it found.
var ErrAddressRefused = errors.New("registry address refused")

// metadataAddrs are cloud metadata services outside the link-local range.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"),   // AWS, over IPv6
}

var (
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT, RFC 6598
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
)

// addressClass says whether image lookups may connect to a: "" when any
// registry may be there, "private" (or "loopback") when only an allowed
// one may, else why never.
func addressClass(a netip.Addr) (class string, never bool) {
	a = a.Unmap()
	if nat64.Contains(a) { // judge the IPv4 address it carries
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case slices.Contains(metadataAddrs, a):
		return "a cloud metadata address", true
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "a link-local address (cloud metadata services live there)", true
	case a.IsUnspecified(), thisNetwork.Contains(a), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "not a unicast address", true
	case a.IsLoopback():
		return "loopback", false
	case a.IsPrivate(), sharedSpace.Contains(a):
		return "private", false
	}
	return "", false
}

// AddressPolicy says which addresses the lookups' connections may reach.
// Link-local and metadata addresses are never reached; private and
// loopback ones only as allowed here.
type AddressPolicy struct {
	// AllowPrivate lets every registry be on a private or loopback address.
	AllowPrivate bool
	// AllowedHosts are registries (host:port, or host for its default
	// port) that may be on private or loopback addresses, such as the ones
	// listed as insecure.
	AllowedHosts []string
}

func (p AddressPolicy) allowsPrivate(hostport string) bool {
	if p.AllowPrivate {
		return true
	}
	host, _, _ := net.SplitHostPort(hostport)
	return slices.Contains(p.AllowedHosts, hostport) || (host != "" && slices.Contains(p.AllowedHosts, host))
}

// Check refuses a resolved address (ip:port) the policy does not allow for
// a connection to the registry at hostport (as named in the image
// reference). DialContext calls it for every address it connects to.
func (p AddressPolicy) Check(hostport, address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s is not an IP address and port", ErrAddressRefused, address)
	}
	class, never := addressClass(ap.Addr())
	switch {
	case class == "":
		return nil
	case never:
		return fmt.Errorf("%w: %s resolves to %s, %s, which image lookups never reach", ErrAddressRefused, hostport, ap.Addr(), class)
	case !p.allowsPrivate(hostport):
		return fmt.Errorf("%w: %s resolves to %s, a %s address; list the registry in --insecure-registries or set --registry-allow-private to allow it",
			ErrAddressRefused, hostport, ap.Addr(), class)
	}
	return nil
}

// DialContext dials like net.Dialer, checking every address it connects to
// at connect time (after name resolution, for each address tried), so that
// a name that resolves to a public address when asked and to a private
// one when connected (DNS rebinding) gains nothing.
func (p AddressPolicy) DialContext(ctx context.Context, network, hostport string) (net.Conn, error) {
	d := &net.Dialer{
		Timeout:   30 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			return p.Check(hostport, address)
		},
	}
	return d.DialContext(ctx, network, hostport)
}

// Transport returns the HTTP transport of image lookups under p: the
// go-containerregistry default with p's dialer. It uses no proxy: through
// a proxy, the proxy would choose the address, and p could not check it.
func (p AddressPolicy) Transport() http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = p.DialContext
	return t
}
