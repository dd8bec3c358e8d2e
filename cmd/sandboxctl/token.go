package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCmdToken(r *root) *cobra.Command {
	return &cobra.Command{
		Use:   "token CLAIM",
		Short: "Print the claimant token of a sandbox sandboxctl claimed",
		Long: `Print the claimant token sandboxctl keeps for the claim CLAIM (NAME or
sandboxclaim/NAME), the only token the sandbox's runner accepts, for programs
that call the runner's HTTP API themselves (curl). Anyone who holds it can run
commands in the sandbox: keep it out of logs and shell history.`,
		Example: `  TOKEN=$(sandboxctl token python-x7k2p)
  IP=$(kubectl get sandboxclaim python-x7k2p -o jsonpath='{.status.podIP}')
  curl -H "Authorization: Bearer $TOKEN" http://$IP:7080/status`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: r.completeClaims(false),
		RunE: func(_ *cobra.Command, args []string) error {
			name, err := claimName(args[0])
			if err != nil {
				return err
			}
			ns, err := r.namespace()
			if err != nil {
				return err
			}
			token, err := r.tokens.load(ns, name)
			if err != nil {
				return err
			}
			fmt.Fprintln(r.stdout, token)
			return nil
		},
	}
}
