package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"sandbox.io/injector/api/v1alpha1"
)

func newCmdExtend(r *root) *cobra.Command {
	out := newOutputFlags("", false)
	cmd := &cobra.Command{
		Use:   "extend CLAIM DURATION",
		Short: "Extend a sandbox's lifetime so that it ends DURATION from now",
		Long: `Extend the sandbox of the claim CLAIM (NAME or sandboxclaim/NAME): its
lifetime (spec.activeDeadlineSeconds) is set so that it ends DURATION from
now, whatever it was, also on a claim that had none. A claim that already
expired cannot be extended (exit code 4).`,
		Example: `  sandboxctl extend python-x7k2p 30m
  sandboxctl extend python-x7k2p 1h -o jsonpath='{.spec.activeDeadlineSeconds}'`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: r.completeClaims(false),
		PreRunE: func(_ *cobra.Command, args []string) error {
			if _, err := out.printer(); err != nil {
				return err
			}
			d, err := time.ParseDuration(args[1])
			if err != nil {
				return fmt.Errorf("DURATION %q: %w", args[1], err)
			}
			if d <= 0 {
				return fmt.Errorf("DURATION %s is not positive", args[1])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := claimName(args[0])
			if err != nil {
				return err
			}
			d, _ := time.ParseDuration(args[1])
			cl, ns, err := r.claimer()
			if err != nil {
				return err
			}
			sbc, err := cl.Extend(cmd.Context(), ns, name, d)
			if err != nil {
				return err
			}
			switch out.format() {
			case outputDefault:
				// The controller moves status.expiresAt; say where it goes.
				ends := time.Now().Add(d)
				if b := sbc.Status.BoundAt; b != nil && sbc.Spec.ActiveDeadlineSeconds != nil {
					ends = b.Add(time.Duration(*sbc.Spec.ActiveDeadlineSeconds) * time.Second)
				}
				fmt.Fprintf(r.stdout, "sandboxclaim.sandbox.io/%s extended: expires at %s\n", sbc.Name, ends.UTC().Format(time.RFC3339))
				return nil
			case outputWide:
				return out.table(claimTable([]v1alpha1.SandboxClaim{*sbc}, time.Now()), false, r.stdout)
			}
			p, err := out.printer()
			if err != nil {
				return err
			}
			return p.PrintObj(sbc, r.stdout)
		},
	}
	out.addFlags(cmd)
	return cmd
}
