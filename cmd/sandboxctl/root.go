package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"

	"sandbox.io/injector/claim"
	"sandbox.io/injector/internal/version"
)

// Exit codes of sandboxctl besides the remote command's own code, which
// exec exits with.
const (
	exitFailure   = 1 // any other error
	exitNoSandbox = 3 // no warm sandbox free and the claim forbade a cold one (claim.ErrNoSandbox)
	exitExpired   = 4 // the claim's lifetime ended (claim.ErrExpired)
)

// exitCodesHelp documents the exit codes in --help.
const exitCodesHelp = `Exit codes:
  0  success
  1  any other error
  3  no sandbox free: no warm pod of the pool was free and --no-cold forbade a cold one
  4  expired: the claim's lifetime ended and its sandbox was deleted
  exec exits with the remote command's own exit code (which may also be 3 or 4).`

// root holds the global flags and what every subcommand shares.
type root struct {
	// kube holds kubectl's connection flags (--kubeconfig, --context,
	// --cluster, --user, -n, --as, --request-timeout, --token, ...).
	kube       *genericclioptions.ConfigFlags
	via        string
	claimToken string
	tokens     tokenStore
	// name is how the command calls itself in help: sandboxctl, or
	// "kubectl sandbox" when run as a kubectl plugin.
	name string

	stdin          io.Reader
	stdout, stderr io.Writer
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *root {
	return &root{
		kube:   genericclioptions.NewConfigFlags(true),
		tokens: tokenStore{dir: defaultTokenDir()},
		name:   "sandboxctl",
		stdin:  stdin, stdout: stdout, stderr: stderr,
	}
}

func newRootCmd(r *root) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandboxctl",
		Short: "Claim sandboxes from warm pools and drive them",
		Long: `sandboxctl claims a sandbox from a SandboxPool (a warm pod in tens of
milliseconds, or a cold pod when none is free), runs commands in it, copies
files in and out, extends and releases it. It follows kubectl: the same
kubeconfig flags, -o output formats and -v levels, and it runs as the kubectl
plugin "kubectl sandbox" when installed as kubectl-sandbox on PATH.

` + exitCodesHelp,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetIn(r.stdin)
	cmd.SetOut(r.stdout)
	cmd.SetErr(r.stderr)
	if r.name != "sandboxctl" {
		cmd.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: r.name}
	}
	f := cmd.PersistentFlags()
	r.kube.CacheDir = nil // sandboxctl uses no discovery cache
	r.kube.AddFlags(f)
	addKlogFlags(f)
	f.StringVar(&r.via, "via", string(claim.TransportProxy), "how to reach sandbox runners: proxy (through the API server; works from outside the cluster) or direct (pod IP; from inside the cluster)")
	f.StringVar(&r.claimToken, "claim-token", "", "the claimant token of the sandbox (default: the one sandboxctl stored when it claimed it); --token is the API server's bearer token, as in kubectl")
	cmd.AddCommand(newCmdClaim(r), newCmdExec(r), newCmdCp(r), newCmdExtend(r), newCmdRelease(r),
		newCmdList(r), newCmdPools(r), newCmdPods(r), newCmdToken(r))
	registerKubeconfigCompletions(cmd, r)
	if r.name != "sandboxctl" {
		for _, c := range cmd.Commands() {
			c.Example = strings.ReplaceAll(c.Example, "sandboxctl ", r.name+" ")
		}
	}
	return cmd
}

// namespace is the namespace to work in: -n, else the kubeconfig context's,
// else default.
func (r *root) namespace() (string, error) {
	ns, _, err := r.kube.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the namespace of the kubeconfig context: %w", err)
	}
	return ns, nil
}

// claimer builds the claim client and returns the namespace to work in.
func (r *root) claimer() (*claim.Client, string, error) {
	t, err := claim.ParseTransport(r.via)
	if err != nil {
		return nil, "", fmt.Errorf("--via: %w", err)
	}
	cfg, err := r.kube.ToRESTConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading kubernetes client configuration: %w", err)
	}
	ns, err := r.namespace()
	if err != nil {
		return nil, "", err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "sandboxctl/" + version.Version
	// Direct requests to runners are logged like the API server's at -v=6
	// and above (the claimant token masked, see logging.go).
	hc := &http.Client{Transport: transport.DebugWrappers(http.DefaultTransport.(*http.Transport).Clone())}
	cl, err := claim.New(cfg, claim.Config{Transport: t, HTTPClient: hc})
	if err != nil {
		return nil, "", err
	}
	return cl, ns, nil
}

// token returns the claimant token of the claim: --claim-token, else the
// stored one.
func (r *root) token(ns, name string) (string, error) {
	token := r.claimToken
	if token == "" {
		var err error
		if token, err = r.tokens.load(ns, name); err != nil {
			return "", err
		}
	}
	secrets.add(token)
	return token, nil
}

// open returns the sandbox of the bound claim name with its token.
func (r *root) open(ctx context.Context, cl *claim.Client, ns, name string) (*claim.Sandbox, error) {
	token, err := r.token(ns, name)
	if err != nil {
		return nil, err
	}
	return cl.Open(ctx, ns, name, token, "")
}

// claimTypes are the resource names a claim argument may be prefixed with,
// as kubectl accepts pod/NAME: sandboxctl claim -o name prints
// sandboxclaim.sandbox.io/NAME.
var claimTypes = []string{"sandboxclaim.sandbox.io", "sandboxclaims.sandbox.io", "sandboxclaim", "sandboxclaims", "sbc"}

// claimName reads a claim argument: NAME or TYPE/NAME.
func claimName(arg string) (string, error) {
	typ, name, ok := strings.Cut(arg, "/")
	if !ok {
		typ, name = "", arg
	}
	if ok && !isClaimType(typ) {
		return "", fmt.Errorf("%q is not a sandbox claim: want NAME or sandboxclaim/NAME", arg)
	}
	if name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("%q is not a sandbox claim: want NAME or sandboxclaim/NAME", arg)
	}
	return name, nil
}

func isClaimType(s string) bool {
	for _, t := range claimTypes {
		if strings.EqualFold(s, t) {
			return true
		}
	}
	return false
}
