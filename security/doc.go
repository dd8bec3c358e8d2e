// Package security holds the project's security suite (`make
// test-security`, part of `make test`): its tests replay attacks on the
// real components, the sandbox-runner binary built from cmd/sandbox-runner,
// the webhook's admission handler and image lookups, and the certificate
// rotator against a real kube-apiserver (envtest), and record every
// outcome in a Ledger. The suite prints "attacks tried: N, refused: M" at
// the end and fails when any attack succeeded.
//
// To add an attack, call attack(t, area, name, try) in a test of this
// package (see attack_test.go): try replays the attack and returns nil when
// it was refused, or an error saying what the attacker achieved.
package security
