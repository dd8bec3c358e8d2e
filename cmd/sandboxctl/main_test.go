package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"sandbox.io/injector/claim"
)

func TestClaimName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		arg, want string
		bad       bool
	}{
		{arg: "python-x7k2p", want: "python-x7k2p"},
		{arg: "sandboxclaim.sandbox.io/python-x7k2p", want: "python-x7k2p"},
		{arg: "sandboxclaim/python-x7k2p", want: "python-x7k2p"},
		{arg: "sbc/python-x7k2p", want: "python-x7k2p"},
		{arg: "SandboxClaims/python-x7k2p", want: "python-x7k2p"},
		{arg: "pod/python-x7k2p", bad: true},
		{arg: "sbc/", bad: true},
		{arg: "sbc/a/b", bad: true},
		{arg: "", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.arg, func(t *testing.T) {
			t.Parallel()
			got, err := claimName(tc.arg)
			if tc.bad != (err != nil) || got != tc.want {
				t.Errorf("claimName(%q) = %q, %v; want %q (error: %v)", tc.arg, got, err, tc.want, tc.bad)
			}
		})
	}
}

func TestRemotePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		arg, claim, path string
		remote           bool
	}{
		{arg: "c1:main.py", claim: "c1", path: "main.py", remote: true},
		{arg: "sandboxclaim.sandbox.io/c1:out/x", claim: "sandboxclaim.sandbox.io/c1", path: "out/x", remote: true},
		{arg: "sbc/c1:x", claim: "sbc/c1", path: "x", remote: true},
		{arg: "./dir:x", remote: false},
		{arg: "/tmp/a:b", remote: false},
		{arg: "local.txt", remote: false},
		{arg: "-", remote: false},
	}
	for _, tc := range tests {
		c, p, ok := remotePath(tc.arg)
		if ok != tc.remote || c != tc.claim || p != tc.path {
			t.Errorf("remotePath(%q) = %q, %q, %v; want %q, %q, %v", tc.arg, c, p, ok, tc.claim, tc.path, tc.remote)
		}
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), exitFailure},
		{exitError{code: 42}, 42},
		{fmt.Errorf("claim ns/a: no warm pod (NoWarmPod): %w", claim.ErrNoSandbox), exitNoSandbox},
		{fmt.Errorf("opening: %w", fmt.Errorf("claim ns/a: %w", claim.ErrExpired)), exitExpired},
		{fmt.Errorf("claim ns/a: %w", claim.ErrFailed), exitFailure},
	}
	for _, tc := range tests {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestInvokedAs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		argv0, name string
		args        []string
	}{
		{"/usr/local/bin/sandboxctl", "sandboxctl", []string{"list"}},
		{"/usr/local/bin/kubectl-sandbox", "kubectl sandbox", []string{"list"}},
		{"kubectl_complete-sandbox", "kubectl sandbox", []string{"__complete", "list"}},
	}
	for _, tc := range tests {
		name, args := invokedAs(tc.argv0, []string{"list"})
		if name != tc.name || strings.Join(args, " ") != strings.Join(tc.args, " ") {
			t.Errorf("invokedAs(%q) = %q, %q; want %q, %q", tc.argv0, name, args, tc.name, tc.args)
		}
	}
}

func TestMaskingWriter(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	m := &maskingWriter{}
	m.setOutput(&out)
	m.add("s3cret-token-0123")
	m.add("")
	line := `I1205 round_trippers.go:1] "Request" headers="X-Sandbox-Token: s3cret-token-0123" curl="-H 'X-Sandbox-Token: s3cret-token-0123'"` + "\n"
	n, err := m.Write([]byte(line))
	if err != nil || n != len(line) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(line))
	}
	if strings.Contains(out.String(), "s3cret") || strings.Count(out.String(), masked) != 2 {
		t.Errorf("masked line %q", out.String())
	}
}

// TestBadOutputBeforeAnyCall: a wrong -o fails before anything is claimed
// (no kubeconfig is even read).
func TestBadOutputBeforeAnyCall(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"claim", "python", "-o", "xml"},
		{"list", "-o", "custom-columns"},
		{"pools", "-o", "custom-columns=NAME"},
		{"release", "c1", "-o", "json"},
		{"extend", "c1", "0s"},
	} {
		var stdout, stderr bytes.Buffer
		r := newRoot(strings.NewReader(""), &stdout, &stderr)
		r.tokens.dir = t.TempDir()
		cmd := newRootCmd(r)
		cmd.SetArgs(append([]string{"--kubeconfig", "/nonexistent/kubeconfig"}, args...))
		err := cmd.Execute()
		if err == nil || strings.Contains(err.Error(), "kubeconfig") {
			t.Errorf("sandboxctl %q: %v; want a flag error before the kubeconfig is read", args, err)
		}
	}
}
