// Package simnet is the network of simulated pods: a dialer that reaches a
// simulated pod's address (one kwok gave it, which nothing serves) only
// through a stand-in listening on loopback, and refuses everything else.
//
// The scale simulation (e2e/scale) hands Dialer.DialContext to the claim
// controller in place of the system dialer, so that its calls to runners at
// podIP:port land on fake runners on 127.0.0.1 and no packet to a simulated
// address is ever sent toward the network: an address without a mapping, a
// host name, UDP, IPv6 and any mapping to a non-loopback target are refused
// before a socket is opened.
package simnet
