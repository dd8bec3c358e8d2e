package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim"
)

func newCmdList(r *root) *cobra.Command {
	return listCommand(&cobra.Command{
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
	}, "list the claims of every namespace", func(cmd *cobra.Command, _ []string, out *outputFlags, all bool) error {
		return runList(cmd, r, out, all, v1alpha1.GroupVersion.WithKind("SandboxClaim"), "sandbox claims", (*claim.Client).List, claimTable)
	})
}

// listCommand completes cmd (its use, help and arguments set) as a command
// that lists objects: -A (allHelp), the -o flags checked before anything
// runs, and run called with them.
func listCommand(cmd *cobra.Command, allHelp string, run func(cmd *cobra.Command, args []string, out *outputFlags, all bool) error) *cobra.Command {
	var all bool
	out := newOutputFlags("", true)
	cmd.PreRunE = func(*cobra.Command, []string) error {
		_, err := out.printer()
		return err
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return run(cmd, args, out, all) }
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, allHelp)
	out.addFlags(cmd)
	return cmd
}

// runList shows the objects of one kind (gvk's kind "SandboxClaim", noun
// "sandbox claims") in the namespace, or in all: as a table, or in the
// format -o names.
func runList[T any, P interface {
	*T
	runtime.Object
}](cmd *cobra.Command, r *root, out *outputFlags, all bool, gvk schema.GroupVersionKind, noun string,
	fetch func(*claim.Client, context.Context, string) ([]T, error), table func([]T, time.Time) *metav1.Table) error {
	cl, ns, err := r.claimer()
	if err != nil {
		return err
	}
	if all {
		ns = ""
	}
	items, err := fetch(cl, cmd.Context(), ns)
	if err != nil {
		return err
	}
	if !out.human() {
		p, err := out.printer()
		if err != nil {
			return err
		}
		return out.printList(p, list[T, P](items, gvk), r.stdout)
	}
	if len(items) == 0 {
		fmt.Fprintf(r.stderr, "No %s found in %s.\n", noun, where(ns))
		return nil
	}
	return out.table(table(items, time.Now()), all, r.stdout)
}

// where names the namespace a list looked in, as kubectl says it.
func where(ns string) string {
	if ns == "" {
		return "any namespace"
	}
	return ns + " namespace"
}
