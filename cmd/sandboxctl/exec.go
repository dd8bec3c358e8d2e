package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"sandbox.io/injector/runner/api"
)

func newCmdExec(r *root) *cobra.Command {
	var (
		stdin   bool
		cwd     string
		timeout int64
	)
	cmd := &cobra.Command{
		Use:   "exec CLAIM -- COMMAND [ARG...]",
		Short: "Run a command in a claimed sandbox",
		Long: `Run a command in the sandbox of the claim CLAIM (NAME or sandboxclaim/NAME),
streaming its output, and exit with its exit code. The command runs without a
shell; use sh -c for one. sandboxctl's own failures exit with 1, or 4 when the
claim has expired.`,
		Example: `  sandboxctl exec python-x7k2p -- python3 -c 'print(1+1)'
  sandboxctl exec python-x7k2p -- sh -c 'echo $API_KEY'
  echo 'print(2+2)' | sandboxctl exec -i python-x7k2p -- python3`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return fmt.Errorf("want exec CLAIM -- COMMAND [ARG...], got %q", args)
			}
			return nil
		},
		ValidArgsFunction: r.completeClaims(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := claimName(args[0])
			if err != nil {
				return err
			}
			cl, ns, err := r.claimer()
			if err != nil {
				return err
			}
			sb, err := r.open(cmd.Context(), cl, ns, name)
			if err != nil {
				return err
			}
			req := api.ExecuteRequest{Argv: args[1:], Cwd: cwd, TimeoutMs: timeout}
			if stdin && r.stdin != nil {
				b, err := io.ReadAll(r.stdin)
				if err != nil {
					return fmt.Errorf("reading stdin: %w", err)
				}
				req.Stdin = string(b)
			}
			res, err := sb.Exec(cmd.Context(), req, r.stdout, r.stderr)
			if err != nil {
				return err
			}
			switch {
			case res.Error != "":
				fmt.Fprintf(r.stderr, "%s: %s\n", args[1], res.Error)
			case res.TimedOut:
				fmt.Fprintf(r.stderr, "%s: killed after --timeout-ms %d\n", args[1], timeout)
			}
			if res.ExitCode != 0 {
				return exitError{code: res.ExitCode}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&stdin, "stdin", "i", false, "pass sandboxctl's standard input to the command")
	f.StringVar(&cwd, "cwd", "", "working directory, relative to the sandbox's work directory")
	f.Int64Var(&timeout, "timeout-ms", 0, "kill the command after this many milliseconds (0: no timeout)")
	return cmd
}
