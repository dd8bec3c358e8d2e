package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"sandbox.io/injector/claim"
	"sandbox.io/injector/internal/version"
)

// root holds the global flags and what every subcommand shares.
type root struct {
	kubeconfig string
	namespace  string
	via        string
	verbose    bool
	token      string
	tokens     tokenStore

	stdin          io.Reader
	stdout, stderr io.Writer
	// load returns the client configuration and the namespace of the
	// current context; tests replace it.
	load func(kubeconfig string) (*rest.Config, string, error)
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *root {
	return &root{stdin: stdin, stdout: stdout, stderr: stderr, load: loadKubeconfig, tokens: tokenStore{dir: defaultTokenDir()}}
}

// loadKubeconfig reads the configuration the way kubectl does: --kubeconfig,
// else KUBECONFIG, else ~/.kube/config, else in-cluster.
func loadKubeconfig(path string) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading kubernetes client configuration: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("reading the current namespace: %w", err)
	}
	return cfg, ns, nil
}

func newRootCmd(r *root) *cobra.Command {
	cmd := &cobra.Command{
		Use:           "sandboxctl",
		Short:         "Claim sandboxes from warm pools and drive them",
		Long:          "sandboxctl claims a sandbox from a SandboxPool (a warm pod in tens of milliseconds, or a cold pod when none is free), runs commands in it, copies files in and out, and releases it.",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := cmd.PersistentFlags()
	f.StringVar(&r.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster)")
	f.StringVarP(&r.namespace, "namespace", "n", "", "namespace of the pool or sandbox (default: the current context's)")
	f.StringVar(&r.via, "via", string(claim.TransportProxy), "how to reach sandbox runners: proxy (through the API server; works from outside the cluster) or direct (pod IP; from inside the cluster)")
	f.BoolVarP(&r.verbose, "verbose", "v", false, "log what the claim does to stderr")
	f.StringVar(&r.token, "token", "", "the claimant token of the sandbox (default: the one sandboxctl stored when it claimed it)")
	cmd.AddCommand(newCmdClaim(r), newCmdExec(r), newCmdCp(r), newCmdRelease(r), newCmdPools(r))
	return cmd
}

// open returns the sandbox of the bound claim name with its token.
func (r *root) open(ctx context.Context, cl *claim.Client, ns, name string) (*claim.Sandbox, error) {
	token := r.token
	if token == "" {
		var err error
		if token, err = r.tokens.load(ns, name); err != nil {
			return nil, err
		}
	}
	return cl.Open(ctx, ns, name, token, "")
}

// claimer builds the claim client and returns the namespace to work in.
func (r *root) claimer() (*claim.Client, string, error) {
	t, err := claim.ParseTransport(r.via)
	if err != nil {
		return nil, "", fmt.Errorf("--via: %w", err)
	}
	cfg, ns, err := r.load(r.kubeconfig)
	if err != nil {
		return nil, "", err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "sandboxctl/" + version.Version
	if r.namespace != "" {
		ns = r.namespace
	}
	if ns == "" {
		ns = "default"
	}
	cl, err := claim.New(cfg, claim.Config{Transport: t})
	if err != nil {
		return nil, "", err
	}
	return cl, ns, nil
}
