package main

import (
	"strings"
	"testing"
	"time"

	"sandbox.io/injector/prepuller"
)

func TestPrePullFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr []string
		check   func(*prepullOptions) string
	}{
		{name: "defaults", check: func(o *prepullOptions) string {
			if o.configMap != "" || o.runnerImage != "" || o.learn || o.interval != time.Minute ||
				o.concurrency != prepuller.DefaultConcurrency || o.diskThreshold != prepuller.DefaultDiskThreshold || o.learnMax != 50 || o.learnForgetAfter != 24*time.Hour {
				return "defaults not applied"
			}
			return ""
		}},
		{
			name: "namespace from POD_NAMESPACE, the rest from SANDBOX_* and flags",
			env:  map[string]string{"POD_NAMESPACE": "sbx", "SANDBOX_PREPULL_CONFIGMAP": "sandbox-injector-prepull", "SANDBOX_LEARN_IMAGES": "true"},
			args: []string{"--runner-image=reg.local:5000/sandbox-runner:v1", "--prepull-interval=30s", "--prepull-concurrency=4", "--prepull-disk-threshold=90"},
			check: func(o *prepullOptions) string {
				if o.namespace != "sbx" || o.configMap != "sandbox-injector-prepull" || !o.learn || o.runnerImage != "reg.local:5000/sandbox-runner:v1" ||
					o.interval != 30*time.Second || o.concurrency != 4 || o.diskThreshold != 90 {
					return "environment or flags not applied"
				}
				return ""
			},
		},
		{name: "--namespace wins over POD_NAMESPACE", env: map[string]string{"POD_NAMESPACE": "a"}, args: []string{"--namespace=b", "--prepull-configmap=l"},
			check: func(o *prepullOptions) string {
				if o.namespace != "b" {
					return "--namespace did not win"
				}
				return ""
			}},
		{name: "SANDBOX_NAMESPACE wins over POD_NAMESPACE", env: map[string]string{"POD_NAMESPACE": "a", "SANDBOX_NAMESPACE": "b"},
			check: func(o *prepullOptions) string {
				if o.namespace != "b" {
					return "namespace " + o.namespace + ", want b"
				}
				return ""
			}},
		{name: "an empty POD_NAMESPACE is no namespace", env: map[string]string{"POD_NAMESPACE": ""}, args: []string{"--prepull-configmap=l"},
			wantErr: []string{"--prepull-configmap needs --namespace (or POD_NAMESPACE)"}},
		{name: "a list without a namespace", args: []string{"--prepull-configmap=list"}, wantErr: []string{"--prepull-configmap needs --namespace"}},
		{
			name: "every bad value is named",
			args: []string{"--namespace=Bad_NS", "--prepull-configmap=UPPER", "--runner-image=Bad:Ref:x", "--prepull-interval=10ms",
				"--prepull-concurrency=0", "--prepull-disk-threshold=101", "--learn-max-images=0", "--learn-forget-after=1s"},
			wantErr: []string{`--namespace "Bad_NS"`, `--prepull-configmap "UPPER"`, "--runner-image", "--prepull-interval 10ms is under 1s",
				"--prepull-concurrency 0 is not in [1, 64]", "--prepull-disk-threshold 101 is not in (0, 100]", "--learn-max-images 0 is below 1",
				"--learn-forget-after 1s is under 1m"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SANDBOX_NODE_NAME", "node-a")
			t.Setenv("POD_NAMESPACE", "")
			got, err := parseOptions(t, tc.args, tc.env)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want %q", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(&got.prepull); msg != "" {
				t.Error(msg)
			}
		})
	}
}
