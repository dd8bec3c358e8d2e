package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// remotePath splits POD:PATH; a local path (with a slash before any colon,
// or no colon) is not remote.
func remotePath(arg string) (pod, path string, ok bool) {
	pod, path, ok = strings.Cut(arg, ":")
	if !ok || pod == "" || strings.Contains(pod, "/") {
		return "", "", false
	}
	return pod, path, true
}

func newCmdCp(r *root) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy a file into or out of a claimed sandbox",
		Long: `Copy one file between this machine and a claimed sandbox; exactly one of
SRC and DST is POD:PATH, with PATH relative to the sandbox's work directory.
A local "-" is standard input or output.`,
		Example: `  sandboxctl cp main.py python-x7k2p:main.py
  sandboxctl cp python-x7k2p:out/result.json ./result.json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcPod, srcPath, srcRemote := remotePath(args[0])
			dstPod, dstPath, dstRemote := remotePath(args[1])
			if srcRemote == dstRemote {
				return fmt.Errorf("want exactly one of SRC and DST as POD:PATH, got %q and %q", args[0], args[1])
			}
			pod, path := srcPod, srcPath
			if dstRemote {
				pod, path = dstPod, dstPath
			}
			if path == "" {
				return fmt.Errorf("%s: the sandbox path is empty", pod)
			}
			cl, ns, err := r.claimer()
			if err != nil {
				return err
			}
			sb, err := r.open(cmd.Context(), cl, ns, pod)
			if err != nil {
				return err
			}
			if dstRemote {
				var in io.Reader = r.stdin
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
