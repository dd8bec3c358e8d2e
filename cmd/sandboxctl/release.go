package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCmdRelease(r *root) *cobra.Command {
	return &cobra.Command{
		Use:     "release CLAIM...",
		Short:   "Release sandboxes (delete their claims; their pods go with them)",
		Long:    "Release sandboxes: their SandboxClaims are deleted, their pods go with them, and the node agent refills the pool.",
		Example: "  sandboxctl release python-x7k2p",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ns, err := r.claimer()
			if err != nil {
				return err
			}
			for _, name := range args {
				if err := cl.Release(cmd.Context(), ns, name); err != nil {
					return err
				}
				r.tokens.remove(ns, name)
				fmt.Fprintf(r.stdout, "released %s\n", name)
			}
			return nil
		},
	}
}
