package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestAgentFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(*options) string
	}{
		{name: "node from the environment", env: map[string]string{"SANDBOX_NODE_NAME": "node-a"}, check: func(o *options) string {
			if o.nodeName != "node-a" || o.criSocket != "/run/containerd/containerd.sock" || o.labelInterval != time.Minute {
				return "defaults or environment not applied"
			}
			return ""
		}},
		{name: "flags win", args: []string{"--node-name=b", "--cri-socket=/x.sock"}, env: map[string]string{"SANDBOX_NODE_NAME": "a"}, check: func(o *options) string {
			if o.nodeName != "b" || o.criSocket != "/x.sock" {
				return "flags did not win"
			}
			return ""
		}},
		{name: "node required", wantErr: "--node-name is required"},
		{name: "log level parsed once, from the environment", env: map[string]string{"SANDBOX_NODE_NAME": "a", "SANDBOX_LOG_LEVEL": "debug"}, check: func(o *options) string {
			if o.LogLevel() != slog.LevelDebug {
				return "log level " + o.LogLevel().String() + ", want DEBUG"
			}
			return ""
		}},
		{name: "bad log level", args: []string{"--node-name=a"}, env: map[string]string{"SANDBOX_LOG_LEVEL": "loud"}, wantErr: `--log-level: log level "loud"`},
		{name: "bad value in the environment names the variable", args: []string{"--node-name=a"}, env: map[string]string{"SANDBOX_LABEL_INTERVAL": "soon"},
			wantErr: `environment variable SANDBOX_LABEL_INTERVAL="soon"`},
		{name: "interval too short", args: []string{"--node-name=a", "--label-interval=10ms"}, wantErr: "--label-interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOptions(t, tc.args, tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(got); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// parseOptions runs the agent's flag handling on args with env set, and
// returns the options it would serve with.
func parseOptions(t *testing.T, args []string, env map[string]string) (*options, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var got *options
	err := run(t.Context(), args, func(_ context.Context, o *options, _ *slog.Logger) error { got = o; return nil })
	return got, err
}
