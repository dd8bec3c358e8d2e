package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
)

// claimOptions are claim's flags.
type claimOptions struct {
	env      []string
	lifetime time.Duration
	timeout  time.Duration
	noCold   bool
	name     string
	files    []string
	out      *outputFlags
}

func newCmdClaim(r *root) *cobra.Command {
	o := &claimOptions{out: newOutputFlags("", false)}
	cmd := &cobra.Command{
		Use:   "claim POOL",
		Short: "Claim a sandbox from a warm pool",
		Long: `Claim a sandbox from the SandboxPool POOL: creates a SandboxClaim and waits
until the claim controller has bound it to a warm pod (or, when none is free
and --no-cold is not given, a cold pod made for it; while that pod starts,
what the claim waits for is shown on stderr). The sandbox's runner accepts
only a token this sandboxctl generated and keeps in its token store (see
"sandboxctl token"); the claim holds only its digest.

Prints where the sandbox is; -o name prints sandboxclaim.sandbox.io/NAME,
which exec, cp, extend, release and token accept as they accept NAME, and
-o json|yaml|jsonpath=... the SandboxClaim.

Exits with 3 when no warm pod was free and --no-cold forbade a cold one.`,
		Example: `  sandboxctl claim python -n sandboxes --env API_KEY=xyz --lifetime 10m
  sandboxctl claim python --file ./task.py --file ./data.csv:input/data.csv
  CLAIM=$(sandboxctl claim python -o name) && sandboxctl exec $CLAIM -- python3 task.py
  sandboxctl claim python -o jsonpath='{.status.podName}'`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: r.completePools,
		PreRunE:           func(*cobra.Command, []string) error { return o.validate() },
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), r, args[0])
		},
	}
	o.addFlags(cmd)
	return cmd
}

func (o *claimOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVarP(&o.env, "env", "e", nil, "K=V added to the environment of every command run in the sandbox (repeatable)")
	f.DurationVar(&o.lifetime, "lifetime", 0, "the sandbox's lifetime from binding; it is deleted at its end (0: none; see extend)")
	f.DurationVar(&o.timeout, "timeout", claim.DefaultTimeout, "how long to wait for the claim to bind")
	f.BoolVar(&o.noCold, "no-cold", false, "fail (exit code 3) instead of getting a cold pod when no warm pod is free (the claim's coldStart: Never)")
	f.StringArrayVar(&o.files, "file", nil, "LOCAL[:PATH] copied into the sandbox's work directory right after the claim, keeping its mode (PATH default: the base name; repeatable)")
	f.StringVar(&o.name, "name", "", "name of the SandboxClaim (default: generated from the pool's name)")
	o.out.addFlags(cmd)
}

func (o *claimOptions) validate() error {
	if _, err := o.out.printer(); err != nil {
		return err
	}
	if o.lifetime < 0 {
		return fmt.Errorf("--lifetime %s is negative", o.lifetime)
	}
	_, err := parseEnv(o.env)
	return err
}

// run claims a sandbox of pool, hands it its token and files, and prints it.
func (o *claimOptions) run(ctx context.Context, r *root, pool string) error {
	envMap, _ := parseEnv(o.env)
	given, err := readClaimFiles(o.files)
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
	secrets.add(token)
	sb, err := cl.Claim(ctx, claim.Request{
		Namespace: ns, Pool: pool, Name: o.name, Env: envMap, Lifetime: o.lifetime,
		NoCold: o.noCold, Token: token, Timeout: o.timeout, Progress: r.showWaiting(),
	})
	if err != nil {
		return err
	}
	if err := prepareSandbox(ctx, r, ns, sb, token, given); err != nil {
		return errors.Join(err, cl.Release(context.WithoutCancel(ctx), ns, sb.Claim))
	}
	if sb.Origin == v1alpha1.OriginColdPod {
		fmt.Fprintf(r.stderr, "WARNING: no warm sandbox of pool %s was free: the claim got a COLD pod (%s, claim took %s). The pool may be too small.\n",
			pool, sb.Pod, sb.Duration.Round(time.Millisecond))
	}
	return o.print(ctx, r, cl, ns, sb)
}

// prepareSandbox keeps the token of a sandbox just claimed in the token
// store and copies the given files into it. On an error the caller releases
// the claim, which no one could use.
func prepareSandbox(ctx context.Context, r *root, ns string, sb *claim.Sandbox, token string, given []claimFile) error {
	if err := r.tokens.save(ns, sb.Claim, token); err != nil {
		return err
	}
	for _, f := range given {
		if err := sb.CopyTo(ctx, bytes.NewReader(f.data), f.path, f.mode); err != nil {
			r.tokens.remove(ns, sb.Claim)
			return err
		}
	}
	return nil
}

// print writes the claimed sandbox in the --output format: the default
// summary, or the SandboxClaim read back.
func (o *claimOptions) print(ctx context.Context, r *root, cl *claim.Client, ns string, sb *claim.Sandbox) error {
	if o.out.format() == outputDefault {
		printSandbox(r.stdout, sb)
		return nil
	}
	sbc, err := cl.Get(ctx, ns, sb.Claim)
	if err != nil {
		return err
	}
	if o.out.format() == outputWide {
		return o.out.table(claimTable([]v1alpha1.SandboxClaim{*sbc}, time.Now()), false, r.stdout)
	}
	p, err := o.out.printer()
	if err != nil {
		return err
	}
	return p.PrintObj(sbc, r.stdout)
}

// showWaiting returns the claim's Progress: while the claim is pending it
// prints, on stderr, what it waits for (the Bound condition's message, a
// cold pod starting), each time that changes.
func (r *root) showWaiting() func(*v1alpha1.SandboxClaim) {
	last := ""
	return func(sbc *v1alpha1.SandboxClaim) {
		cond := meta.FindStatusCondition(sbc.Status.Conditions, v1alpha1.ConditionBound)
		if cond == nil || cond.Message == "" || cond.Message == last {
			return
		}
		last = cond.Message
		fmt.Fprintf(r.stderr, "waiting for claim %s: %s\n", sbc.Name, cond.Message)
	}
}

// printSandbox is claim's default output.
func printSandbox(w io.Writer, sb *claim.Sandbox) {
	origin := string(sb.Origin)
	if sb.Origin == v1alpha1.OriginColdPod {
		origin = "COLD (no warm pod was free; a new pod was made)"
	}
	expires := "never"
	if !sb.ExpiresAt.IsZero() {
		expires = sb.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "claim:     %s\npool:      %s\npod:       %s\nnamespace: %s\nnode:      %s\norigin:    %s\naddress:   %s\nexpires:   %s\ntook:      %s\n",
		sb.Claim, sb.Pool, sb.Pod, sb.Namespace, sb.Node, origin, sb.Address, expires, sb.Duration.Round(time.Millisecond))
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
