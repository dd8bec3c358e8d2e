package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
		lifetime time.Duration
		timeout  time.Duration
		noCold   bool
		name     string
		output   string
		files    []string
	)
	cmd := &cobra.Command{
		Use:   "claim POOL",
		Short: "Claim a sandbox from a warm pool",
		Long: `Claim a sandbox from the SandboxPool POOL: creates a SandboxClaim and waits
until the claim controller has bound it to a warm pod (or, when none is free
and --no-cold is not given, a cold pod made for it). The sandbox's runner
accepts only a token this sandboxctl generated and keeps in its token store;
the claim holds only its digest. Prints the claim's name; use it with exec,
cp and release.`,
		Example: `  sandboxctl claim python -n sandboxes --env API_KEY=xyz --lifetime 10m
  sandboxctl claim python --file ./task.py --file ./data.csv:input/data.csv
  CLAIM=$(sandboxctl claim python -o name)`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(*cobra.Command, []string) error {
			switch output {
			case "text", "name", "json":
			default:
				return fmt.Errorf("--output %q is not text, name or json", output)
			}
			if lifetime < 0 {
				return fmt.Errorf("--lifetime %s is negative", lifetime)
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
			token, err := claim.NewToken()
			if err != nil {
				return err
			}
			sb, err := cl.Claim(cmd.Context(), claim.Request{
				Namespace: ns, Pool: args[0], Name: name, Env: envMap, Lifetime: lifetime,
				NoCold: noCold, Token: token, Timeout: timeout,
			})
			if err != nil {
				return err
			}
			if err := r.tokens.save(ns, sb.Claim, token); err != nil {
				return errors.Join(err, cl.Release(context.WithoutCancel(cmd.Context()), ns, sb.Claim))
			}
			for _, f := range given {
				if err := sb.CopyTo(cmd.Context(), bytes.NewReader(f.data), f.path, f.mode); err != nil {
					return errors.Join(err, cl.Release(context.WithoutCancel(cmd.Context()), ns, sb.Claim))
				}
			}
			cold := sb.Origin == v1alpha1.OriginColdPod
			if cold {
				fmt.Fprintf(r.stderr, "WARNING: no warm sandbox of pool %s was free: the claim got a COLD pod (%s, claim took %s). The pool may be too small.\n",
					args[0], sb.Pod, sb.Duration.Round(time.Millisecond))
			}
			switch output {
			case "name":
				fmt.Fprintln(r.stdout, sb.Claim)
			case "json":
				b, err := json.MarshalIndent(claimOutput{
					Claim: sb.Claim, Pod: sb.Pod, Namespace: sb.Namespace, Node: sb.Node, Pool: sb.Pool, Origin: string(sb.Origin),
					Address: sb.Address, PodIP: sb.PodIP, Milliseconds: sb.Duration.Milliseconds(),
				}, "", "  ")
				if err != nil {
					return fmt.Errorf("encoding the claim: %w", err)
				}
				fmt.Fprintln(r.stdout, string(b))
			default:
				origin := string(sb.Origin)
				if cold {
					origin = "COLD (no warm pod was free; a new pod was made)"
				}
				expires := "never"
				if !sb.ExpiresAt.IsZero() {
					expires = sb.ExpiresAt.Format(time.RFC3339)
				}
				fmt.Fprintf(r.stdout, "claim:     %s\npod:       %s\nnamespace: %s\nnode:      %s\norigin:    %s\naddress:   %s\nexpires:   %s\ntook:      %s\n",
					sb.Claim, sb.Pod, sb.Namespace, sb.Node, origin, sb.Address, expires, sb.Duration.Round(time.Millisecond))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&env, "env", "e", nil, "K=V added to the environment of every command run in the sandbox (repeatable)")
	f.DurationVar(&lifetime, "lifetime", 0, "the sandbox's lifetime from binding; it is deleted at its end (0: none)")
	f.DurationVar(&timeout, "timeout", claim.DefaultTimeout, "how long to wait for the claim to bind")
	f.BoolVar(&noCold, "no-cold", false, "fail instead of getting a cold pod when no warm pod is free")
	f.StringArrayVar(&files, "file", nil, "LOCAL[:PATH] copied into the sandbox's work directory right after the claim, keeping its mode (PATH default: the base name; repeatable)")
	f.StringVar(&name, "name", "", "name of the SandboxClaim (default: generated from the pool's name)")
	f.StringVarP(&output, "output", "o", "text", "output format: text, name (the claim name only) or json")
	return cmd
}

type claimOutput struct {
	Claim        string `json:"claim"`
	Pod          string `json:"pod"`
	Namespace    string `json:"namespace"`
	Node         string `json:"node"`
	Pool         string `json:"pool"`
	Origin       string `json:"origin"`
	Address      string `json:"address"`
	PodIP        string `json:"podIP"`
	Milliseconds int64  `json:"milliseconds"`
}

type claimFile struct {
	path string
	data []byte
	mode uint32
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
func readClaimFiles(specs []string) ([]claimFile, error) {
	var out []claimFile
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
		out = append(out, claimFile{path: remote, data: data, mode: uint32(fi.Mode().Perm())})
	}
	return out, nil
}
