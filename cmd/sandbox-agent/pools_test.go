package main

import (
	"strings"
	"testing"
	"time"
)

func TestPoolFlags(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantErr     string
		wantEnabled bool
		wantMax     int
		wantRefill  time.Duration
	}{
		{name: "on by default, batches of 5, refill after 500ms", wantEnabled: true, wantMax: 5, wantRefill: 500 * time.Millisecond},
		{name: "off", args: []string{"--pools=false"}, wantEnabled: false, wantMax: 5},
		{name: "from the environment", env: map[string]string{"SANDBOX_POOLS": "false", "SANDBOX_POOL_MAX_CREATES": "2"}, wantEnabled: false, wantMax: 2},
		{name: "flag wins", args: []string{"--pool-max-creates=7"}, env: map[string]string{"SANDBOX_POOL_MAX_CREATES": "2"}, wantEnabled: true, wantMax: 7},
		{name: "zero batch", args: []string{"--pool-max-creates=0"}, wantErr: "--pool-max-creates 0 is not between 1 and 100"},
		{name: "huge batch", args: []string{"--pool-max-creates=101"}, wantErr: "--pool-max-creates 101"},
		{name: "not a number", env: map[string]string{"SANDBOX_POOL_MAX_CREATES": "many"}, wantErr: "SANDBOX_POOL_MAX_CREATES"},
		{name: "stuck after off", args: []string{"--pool-stuck-after=0"}, wantEnabled: true, wantMax: 5},
		{name: "stuck after too short", args: []string{"--pool-stuck-after=5s"}, wantErr: "--pool-stuck-after 5s is under 1m"},
		{name: "refill at once", args: []string{"--pool-refill-delay=0"}, wantEnabled: true, wantMax: 5, wantRefill: -1},
		{name: "refill delay from the environment", env: map[string]string{"SANDBOX_POOL_REFILL_DELAY": "2s"}, wantEnabled: true, wantMax: 5, wantRefill: 2 * time.Second},
		{name: "refill delay negative", args: []string{"--pool-refill-delay=-1s"}, wantErr: "--pool-refill-delay -1s is not between 0 and 10s"},
		{name: "refill delay too long", args: []string{"--pool-refill-delay=1m"}, wantErr: "--pool-refill-delay 1m0s is not between 0 and 10s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SANDBOX_NODE_NAME", "node-a")
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
			if got.pools.enabled != tc.wantEnabled || got.pools.maxCreates != tc.wantMax {
				t.Errorf("pools %+v, want enabled %v, max %d", got.pools, tc.wantEnabled, tc.wantMax)
			}
			if tc.wantRefill != 0 {
				if d := refillDelay(got.pools.refillDelay); d != tc.wantRefill {
					t.Errorf("PoolConfig.RefillDelay %s, want %s", d, tc.wantRefill)
				}
			}
		})
	}
}
