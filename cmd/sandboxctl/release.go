package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"

	"sandbox.io/injector/api/v1alpha1"
)

func newCmdRelease(r *root) *cobra.Command {
	var (
		output         string
		ignoreNotFound bool
	)
	cmd := &cobra.Command{
		Use:   "release CLAIM...",
		Short: "Release sandboxes (delete their claims; their pods go with them)",
		Long: `Release sandboxes: their SandboxClaims are deleted, their pods go with them
(the node agent refills the pool), and their tokens leave sandboxctl's token
store. CLAIM is NAME or sandboxclaim/NAME.`,
		Example: `  sandboxctl release python-x7k2p
  sandboxctl release $(sandboxctl list -o name)`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: r.completeClaims(true),
		PreRunE: func(*cobra.Command, []string) error {
			if output != "" && output != "name" {
				return fmt.Errorf("--output %q: release prints only names (-o name)", output)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			names := make([]string, 0, len(args))
			for _, a := range args {
				name, err := claimName(a)
				if err != nil {
					return err
				}
				names = append(names, name)
			}
			cl, ns, err := r.claimer()
			if err != nil {
				return err
			}
			p := &printers.NamePrinter{Operation: "released", ShortOutput: output == "name"}
			var errs []error
			for _, name := range names {
				err := cl.Release(cmd.Context(), ns, name)
				if apierrors.IsNotFound(err) {
					r.tokens.remove(ns, name)
					if !ignoreNotFound {
						errs = append(errs, err)
					}
					continue
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				r.tokens.remove(ns, name)
				sbc := &v1alpha1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
				sbc.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("SandboxClaim"))
				if err := p.PrintObj(sbc, r.stdout); err != nil {
					return err
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: name prints sandboxclaim.sandbox.io/NAME for each claim released")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat a claim that does not exist (any more) as released")
	return cmd
}
