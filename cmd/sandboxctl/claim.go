package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
)

func newCmdClaim(r *root) *cobra.Command {
	var (
		env      []string
		wait     time.Duration
		noCold   bool
		claimant string
		output   string
		files    []string
	)
	cmd := &cobra.Command{
		Use:   "claim POOL",
		Short: "Claim a sandbox from a warm pool",
		Long: `Claim a sandbox from the SandboxPool POOL: a warm pod when one is free
(its runner gets a fresh token and the --env variables), else, after --wait,
a cold pod created from the pool's template (unless --no-cold).
Prints the sandbox's pod name and address; use the pod name with exec, cp
and release.`,
		Example: `  sandboxctl claim python -n sandboxes --env API_KEY=xyz
  sandboxctl claim python --file ./task.py --file ./data.csv:input/data.csv
  POD=$(sandboxctl claim python -o name)`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(*cobra.Command, []string) error {
			switch output {
			case "text", "name", "json":
			default:
				return fmt.Errorf("--output %q is not text, name or json", output)
			}
			if wait < 0 {
				return fmt.Errorf("--wait %s is negative", wait)
			}
			_, err := parseEnv(env)
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			envMap, _ := parseEnv(env)
			given, err := readClaimFiles(files)
			if err != nil {
				return err
			}
			cl, ns, err := r.claimer()
			if err != nil {
				return err
			}
			grace := wait
			if grace == 0 {
				grace = -1 // the flag's 0 means do not wait
			}
			sb, err := cl.Claim(cmd.Context(), ns, args[0], claim.Options{
				Env: envMap, Claimant: claimant, Grace: grace, NoCold: noCold, Files: given,
			})
			if err != nil {
				return err
			}
			cold := sb.Origin == v1alpha1.OriginCold
			if cold {
				fmt.Fprintf(r.stderr, "WARNING: no warm sandbox of pool %s was free within %s: created a COLD pod (%s, claim took %s). The pool may be too small.\n",
					args[0], wait, sb.Pod, sb.Timings.Total.Round(time.Millisecond))
			}
			switch output {
			case "name":
				fmt.Fprintln(r.stdout, sb.Pod)
			case "json":
				b, err := json.MarshalIndent(claimOutput{
					Pod: sb.Pod, Namespace: sb.Namespace, Node: sb.Node, Pool: sb.Pool, Origin: sb.Origin,
					Address: sb.Address, PodIP: sb.PodIP, Milliseconds: sb.Timings.Total.Milliseconds(),
				}, "", "  ")
				if err != nil {
					return fmt.Errorf("encoding the claim: %w", err)
				}
				fmt.Fprintln(r.stdout, string(b))
			default:
				origin := sb.Origin
				if cold {
					origin = "COLD (no warm pod was free; created a new pod)"
				}
				fmt.Fprintf(r.stdout, "pod:       %s\nnamespace: %s\nnode:      %s\norigin:    %s\naddress:   %s\ntook:      %s\n",
					sb.Pod, sb.Namespace, sb.Node, origin, sb.Address, sb.Timings.Total.Round(time.Millisecond))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&env, "env", "e", nil, "K=V added to the environment of every command run in the sandbox (repeatable)")
	f.DurationVar(&wait, "wait", claim.DefaultGrace, "how long to wait for a warm pod before creating a cold one (0: do not wait)")
	f.BoolVar(&noCold, "no-cold", false, "fail instead of creating a cold pod when no warm pod is free")
	f.StringArrayVar(&files, "file", nil, "LOCAL[:PATH] copied into the sandbox's work directory at claim time, keeping its mode (PATH default: the base name; repeatable)")
	f.StringVar(&claimant, "claimant", "", "who claims, recorded on the pod (default USER@HOST)")
	f.StringVarP(&output, "output", "o", "text", "output format: text, name (the pod name only) or json")
	return cmd
}

type claimOutput struct {
	Pod          string `json:"pod"`
	Namespace    string `json:"namespace"`
	Node         string `json:"node"`
	Pool         string `json:"pool"`
	Origin       string `json:"origin"`
	Address      string `json:"address"`
	PodIP        string `json:"podIP"`
	Milliseconds int64  `json:"milliseconds"`
}

func parseEnv(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q is not K=V", kv)
		}
		m[k] = v
	}
	return m, nil
}

// readClaimFiles reads the --file flags (LOCAL[:PATH]) before anything is
// claimed, so that a missing local file costs no sandbox.
func readClaimFiles(specs []string) ([]claim.File, error) {
	var out []claim.File
	for _, spec := range specs {
		local, remote, ok := strings.Cut(spec, ":")
		if !ok || remote == "" {
			remote = filepath.Base(local)
		}
		data, err := os.ReadFile(local)
		if err != nil {
			return nil, fmt.Errorf("--file %q: %w", spec, err)
		}
		fi, err := os.Stat(local)
		if err != nil {
			return nil, fmt.Errorf("--file %q: %w", spec, err)
		}
		out = append(out, claim.File{Path: remote, Data: data, Mode: uint32(fi.Mode().Perm())})
	}
	return out, nil
}
