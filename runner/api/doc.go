// Package api holds the wire types of the sandbox runner's HTTP API: the
// JSON bodies that the runner (package runner) serves and that the Go client
// (package runner/client) sends and decodes. Both sides import this package
// only, so the two can never drift apart. It depends on the standard library
// alone, like everything the runner binary links.
package api
