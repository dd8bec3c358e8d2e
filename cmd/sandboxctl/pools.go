package main

import (
	"github.com/spf13/cobra"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
)

func newCmdPools(r *root) *cobra.Command {
	var all bool
	out := newOutputFlags("", true)
	cmd := &cobra.Command{
		Use:   "pools",
		Short: "List the warm pools and how many sandboxes each has ready",
		Long: `List the SandboxPools of the namespace (or of all with -A) with their image,
warm pods per node, and the desired, ready, warm and claimed pods; -o wide
adds the reason and message of the pool's Ready condition.`,
		Example: `  sandboxctl pools
  sandboxctl pools -A -o wide
  sandboxctl pools -o jsonpath='{.items[*].metadata.name}'`,
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			_, err := out.printer()
			return err
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runList(cmd, r, out, all, v1alpha1.GroupVersion.WithKind("SandboxPool"), "sandbox pools", (*claim.Client).Pools, poolTable)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the pools of every namespace")
	out.addFlags(cmd)
	return cmd
}
