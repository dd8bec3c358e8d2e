package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newCmdList(r *root) *cobra.Command {
	var all bool
	out := newOutputFlags("", true)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the sandbox claims with their pool, phase, pod, origin and expiry",
		Long: `List the SandboxClaims of the namespace (or of all with -A): pool, phase, pod,
origin (Warm or Cold) and the time left until each expires; -o wide adds the
node, the runner's address and the reason of the Bound condition.`,
		Example: `  sandboxctl list
  sandboxctl list -A -o wide
  sandboxctl list -o custom-columns=NAME:.metadata.name,POD:.status.podName`,
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			_, err := out.printer()
			return err
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, ns, err := r.claimer()
			if err != nil {
				return err
			}
			if all {
				ns = ""
			}
			claims, err := cl.List(cmd.Context(), ns)
			if err != nil {
				return err
			}
			if !out.human() {
				p, err := out.printer()
				if err != nil {
					return err
				}
				return out.printList(p, list(claims, "SandboxClaim"), r.stdout)
			}
			if len(claims) == 0 {
				fmt.Fprintf(r.stderr, "No sandbox claims found in %s.\n", where(ns))
				return nil
			}
			return out.table(claimTable(claims, time.Now()), all, r.stdout)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the claims of every namespace")
	out.addFlags(cmd)
	return cmd
}

// where names the namespace a list looked in, as kubectl says it.
func where(ns string) string {
	if ns == "" {
		return "any namespace"
	}
	return ns + " namespace"
}
