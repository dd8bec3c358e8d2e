package main

import (
	"github.com/spf13/cobra"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
)

func newCmdPools(r *root) *cobra.Command {
	return listCommand(&cobra.Command{
		Use:   "pools",
		Short: "List the warm pools and how many sandboxes each has ready",
		Long: `List the SandboxPools of the namespace (or of all with -A) with their image,
warm pods per node, and the desired, ready, warm and claimed pods; -o wide
adds the reason and message of the pool's Ready condition.`,
		Example: `  sandboxctl pools
  sandboxctl pools -A -o wide
  sandboxctl pools -o jsonpath='{.items[*].metadata.name}'`,
		Args: cobra.NoArgs,
	}, "list the pools of every namespace", func(cmd *cobra.Command, _ []string, out *outputFlags, all bool) error {
		return runList(cmd, r, out, all, v1alpha1.GroupVersion.WithKind("SandboxPool"), "sandbox pools", (*claim.Client).Pools, poolTable)
	})
}
