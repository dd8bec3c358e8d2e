// Package api holds the sandbox runner's contract: the wire types of its HTTP
// API, the JSON bodies that the runner (package runner) serves and that the Go
// client (package runner/client) sends and decodes, and the values every
// component that starts or calls the runner must agree on (contract.go: its
// default port, port name, default token Secret and API paths; its modes and
// restart policies). The webhook, the claim controller, the chart's Go tests
// and the clients refer to them here, so the two sides can never drift apart.
// It depends on the standard library alone, like everything the runner binary
// links (TestStandardLibraryOnly).
package api
