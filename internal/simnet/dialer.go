package simnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// ErrRefused is wrapped by every error of a dial the Dialer will not make.
var ErrRefused = errors.New("simnet: refused")

// Dialer maps simulated pod addresses (IPv4 address and port) to stand-ins
// on the IPv4 loopback network. Its zero value refuses every dial; it is
// safe for concurrent use.
type Dialer struct {
	mu      sync.RWMutex
	routes  map[netip.AddrPort]netip.AddrPort
	dialer  net.Dialer
	refused int
}

// Map routes dials of from (a simulated pod's IPv4 address and port) to to,
// a listener on the IPv4 loopback network (127.0.0.0/8). It refuses a from
// that is not a plain IPv4 address and port, and a to that is not loopback.
// Mapping the same from again replaces its target.
func (d *Dialer) Map(from, to netip.AddrPort) error {
	if !from.IsValid() || !from.Addr().Is4() || from.Port() == 0 {
		return fmt.Errorf("mapping %s: %w: the simulated address must be an IPv4 address with a port", from, ErrRefused)
	}
	if !to.IsValid() || !to.Addr().Is4() || !to.Addr().IsLoopback() || to.Port() == 0 {
		return fmt.Errorf("mapping %s to %s: %w: the stand-in must be on 127.0.0.0/8 with a port", from, to, ErrRefused)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.routes == nil {
		d.routes = make(map[netip.AddrPort]netip.AddrPort)
	}
	d.routes[from] = to
	return nil
}

// Unmap removes the route of from; dials of it are refused again.
func (d *Dialer) Unmap(from netip.AddrPort) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.routes, from)
}

// Len returns how many addresses are mapped.
func (d *Dialer) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.routes)
}

// Refused returns how many dials were refused so far.
func (d *Dialer) Refused() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.refused
}

// Resolve returns the loopback stand-in of addr ("ip:port") or an error
// wrapping ErrRefused; it never dials.
func (d *Dialer) Resolve(network, addr string) (netip.AddrPort, error) {
	if network != "tcp" && network != "tcp4" {
		return netip.AddrPort{}, d.refuse("dialing %s %s: %w: only tcp is served", network, addr, ErrRefused)
	}
	// ParseAddrPort takes only literal addresses: a host name never
	// reaches a resolver.
	from, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.AddrPort{}, d.refuse("dialing %s: %w: not a literal ip:port (%v)", addr, ErrRefused, err)
	}
	if !from.Addr().Is4() {
		return netip.AddrPort{}, d.refuse("dialing %s: %w: only IPv4 addresses are mapped", addr, ErrRefused)
	}
	d.mu.RLock()
	to, ok := d.routes[from]
	d.mu.RUnlock()
	if !ok {
		return netip.AddrPort{}, d.refuse("dialing %s: %w: no stand-in is mapped for it", addr, ErrRefused)
	}
	// Map already checked it; checked again so that no change to Map can
	// let a dial leave loopback.
	if !to.Addr().Is4() || !to.Addr().IsLoopback() {
		return netip.AddrPort{}, d.refuse("dialing %s: %w: its stand-in %s is not on loopback", addr, ErrRefused, to)
	}
	return to, nil
}

// DialContext dials the loopback stand-in of addr, with the signature of
// net.Dialer.DialContext and http.Transport.DialContext.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	to, err := d.Resolve(network, addr)
	if err != nil {
		return nil, err
	}
	conn, err := d.dialer.DialContext(ctx, "tcp4", to.String())
	if err != nil {
		return nil, fmt.Errorf("dialing the stand-in %s of %s: %w", to, addr, err)
	}
	return conn, nil
}

func (d *Dialer) refuse(format string, args ...any) error {
	d.mu.Lock()
	d.refused++
	d.mu.Unlock()
	return fmt.Errorf(format, args...)
}
