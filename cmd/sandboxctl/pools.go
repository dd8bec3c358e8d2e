package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newCmdPools(r *root) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "pools",
		Short: "List the warm pools and their totals",
		Long:  "List the SandboxPools of the namespace with their desired, ready, warm and claimed pods, as the claim controller reports them in the pools' status (per-node counts are the node agents' metrics).",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, ns, err := r.claimer()
			if err != nil {
				return err
			}
			if all {
				ns = ""
			}
			pools, err := cl.Pools(cmd.Context(), ns)
			if err != nil {
				return err
			}
			if len(pools) == 0 {
				where := "namespace " + ns
				if all {
					where = "any namespace"
				}
				fmt.Fprintf(r.stderr, "no sandbox pools in %s\n", where)
				return nil
			}
			w := tabwriter.NewWriter(r.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAMESPACE\tPOOL\tIMAGE\tPER NODE\tDESIRED\tREADY\tWARM\tCLAIMED")
			for _, p := range pools {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", p.Namespace, p.Name, p.Spec.Template.Image,
					p.Spec.WarmPodsPerNode(), p.Status.Desired, p.Status.Ready, p.Status.Warm, p.Status.Claimed)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list the pools of every namespace")
	return cmd
}
