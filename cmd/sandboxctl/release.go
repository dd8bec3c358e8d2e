package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCmdRelease(r *root) *cobra.Command {
	return &cobra.Command{
		Use:     "release POD...",
		Short:   "Release claimed sandboxes (delete their pods)",
		Long:    "Release claimed sandboxes: their pods and token Secrets are deleted, and the node agent refills the pool. Only claimed pool pods are released.",
		Example: "  sandboxctl release python-x7k2p",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ns, err := r.claimer()
			if err != nil {
				return err
			}
			for _, pod := range args {
				if err := cl.Release(cmd.Context(), ns, pod); err != nil {
					return err
				}
				fmt.Fprintf(r.stdout, "released %s\n", pod)
			}
			return nil
		},
	}
}
