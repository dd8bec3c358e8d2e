package envflag

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	type values struct {
		port      int
		namespace string
		wait      time.Duration
		on        bool
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    values
		wantErr []string
	}{
		{name: "defaults", want: values{port: 7, wait: time.Second}},
		{
			name: "environment",
			env:  map[string]string{"SANDBOX_PORT": "8", "SANDBOX_WAIT": "2s", "SANDBOX_ON": "true", "SANDBOX_NAMESPACE": "sbx"},
			want: values{port: 8, namespace: "sbx", wait: 2 * time.Second, on: true},
		},
		{
			name: "flag wins over environment",
			args: []string{"--port=9", "--namespace=flag", "--on=false"},
			env:  map[string]string{"SANDBOX_PORT": "8", "SANDBOX_NAMESPACE": "env", "POD_NAMESPACE": "pod", "SANDBOX_ON": "true"},
			want: values{port: 9, namespace: "flag", wait: time.Second},
		},
		{name: "a further variable", env: map[string]string{"POD_NAMESPACE": "pod"}, want: values{port: 7, namespace: "pod", wait: time.Second}},
		{
			name: "the flag's own variable wins over a further one",
			env:  map[string]string{"SANDBOX_NAMESPACE": "own", "POD_NAMESPACE": "pod"},
			want: values{port: 7, namespace: "own", wait: time.Second},
		},
		{name: "an empty variable is applied", env: map[string]string{"POD_NAMESPACE": ""}, want: values{port: 7, wait: time.Second}},
		{name: "a wrapped bool flag takes no value", args: []string{"--on"}, want: values{port: 7, wait: time.Second, on: true}},
		{
			name:    "every bad variable is named",
			env:     map[string]string{"SANDBOX_PORT": "eight", "SANDBOX_WAIT": "soon", "SANDBOX_ON": ""},
			wantErr: []string{`environment variable SANDBOX_PORT="eight"`, `environment variable SANDBOX_WAIT="soon"`, `environment variable SANDBOX_ON=""`},
		},
		{name: "a bad flag is named", args: []string{"--port=x"}, wantErr: []string{"-port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got values
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.IntVar(&got.port, "port", 7, "")
			fs.StringVar(&got.namespace, "namespace", "", "")
			fs.DurationVar(&got.wait, "wait", time.Second, "")
			fs.BoolVar(&got.on, "on", false, "")
			Also(fs, "namespace", "POD_NAMESPACE")
			Also(fs, "on", "LEGACY_ON")
			err := Parse(fs, tc.args, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want %q", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestEnvNames(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.String("node-name", "", "")
	fs.String("namespace", "", "")
	Also(fs, "namespace", "POD_NAMESPACE")
	if got := strings.Join(EnvNames(fs.Lookup("node-name")), ","); got != "SANDBOX_NODE_NAME" {
		t.Errorf("node-name reads %s", got)
	}
	if got := strings.Join(EnvNames(fs.Lookup("namespace")), ","); got != "SANDBOX_NAMESPACE,POD_NAMESPACE" {
		t.Errorf("namespace reads %s", got)
	}
}

// TestAlsoKeepsHelp checks that a wrapped flag prints like any other (the
// flag package calls String on a zero value of its type).
func TestAlsoKeepsHelp(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.String("namespace", "", "the namespace")
	Also(fs, "namespace", "POD_NAMESPACE")
	fs.PrintDefaults()
	if strings.Contains(out.String(), "panic") || !strings.Contains(out.String(), "the namespace") {
		t.Errorf("help:\n%s", out.String())
	}
}

func TestAlsoPanicsOnAMissingFlag(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	Also(flag.NewFlagSet("test", flag.ContinueOnError), "nope", "X")
}
