package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// remotePath splits CLAIM:PATH, where CLAIM is NAME or sandboxclaim/NAME;
// a local path (no colon, or a slash before it that is not after a claim
// type) is not remote.
func remotePath(arg string) (claim, path string, ok bool) {
	claim, path, ok = strings.Cut(arg, ":")
	if !ok || claim == "" {
		return "", "", false
	}
	if typ, _, typed := strings.Cut(claim, "/"); typed && !isClaimType(typ) {
		return "", "", false
	}
	return claim, path, true
}

func newCmdCp(r *root) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy a file into or out of a claimed sandbox",
		Long: `Copy one file between this machine and a claimed sandbox; exactly one of
SRC and DST is CLAIM:PATH (CLAIM is NAME or sandboxclaim/NAME), with PATH
relative to the sandbox's work directory. A local "-" is standard input or
output. A file copied in keeps its permission bits.`,
		Example: `  sandboxctl cp main.py python-x7k2p:main.py
  sandboxctl cp python-x7k2p:out/result.json ./result.json
  sandboxctl cp python-x7k2p:out/log.txt - | less`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: r.completeCp,
		RunE: func(cmd *cobra.Command, args []string) error {
			srcClaim, srcPath, srcRemote := remotePath(args[0])
			dstClaim, dstPath, dstRemote := remotePath(args[1])
			if srcRemote == dstRemote {
				return fmt.Errorf("want exactly one of SRC and DST as CLAIM:PATH, got %q and %q", args[0], args[1])
			}
			arg, path := srcClaim, srcPath
			if dstRemote {
				arg, path = dstClaim, dstPath
			}
			if path == "" {
				return fmt.Errorf("%s: the sandbox path is empty", arg)
			}
			name, err := claimName(arg)
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
			if dstRemote {
				in := r.stdin
				var mode uint32
				if args[0] != "-" {
					f, err := os.Open(args[0])
					if err != nil {
						return fmt.Errorf("opening %s: %w", args[0], err)
					}
					defer f.Close()
					st, err := f.Stat()
					if err != nil {
						return fmt.Errorf("reading %s: %w", args[0], err)
					}
					if st.IsDir() {
						return fmt.Errorf("%s is a directory; cp copies one file", args[0])
					}
					in, mode = f, uint32(st.Mode().Perm())
				}
				return sb.CopyTo(cmd.Context(), in, path, mode)
			}
			if args[1] == "-" {
				return sb.CopyFrom(cmd.Context(), path, r.stdout)
			}
			f, err := os.Create(args[1])
			if err != nil {
				return fmt.Errorf("creating %s: %w", args[1], err)
			}
			if err := sb.CopyFrom(cmd.Context(), path, f); err != nil {
				f.Close()
				os.Remove(args[1])
				return err
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("writing %s: %w", args[1], err)
			}
			return nil
		},
	}
	return cmd
}
