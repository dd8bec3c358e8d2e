package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// completionTimeout bounds the API calls of one shell completion.
const completionTimeout = 10 * time.Second

// completePools completes the pool argument of claim.
func (r *root) completePools(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cl, ns, err := r.claimer()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	pools, err := cl.Pools(ctx, ns)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []string
	for _, p := range pools {
		if strings.HasPrefix(p.Name, toComplete) {
			out = append(out, p.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// claimNames lists the claims of the namespace whose names (with the
// claim type toComplete starts with, if any) start with toComplete, each
// followed by suffix.
func (r *root) claimNames(cmd *cobra.Command, toComplete, suffix string, skip []string) ([]string, bool) {
	cl, ns, err := r.claimer()
	if err != nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	claims, err := cl.List(ctx, ns)
	if err != nil {
		return nil, false
	}
	prefix := ""
	if typ, _, ok := strings.Cut(toComplete, "/"); ok && isClaimType(typ) {
		prefix = typ + "/"
	}
	var out []string
	for _, c := range claims {
		name := prefix + c.Name
		if strings.HasPrefix(name, toComplete) && !slices.Contains(skip, name) {
			out = append(out, name+suffix)
		}
	}
	return out, true
}

// completeClaims completes a claim argument: the first only, or with multi
// every argument (release).
func (r *root) completeClaims(multi bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 && !multi {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names, ok := r.claimNames(cmd, toComplete, "", args)
		if !ok {
			return nil, cobra.ShellCompDirectiveError
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeCp completes CLAIM: (then the sandbox path is the user's) or,
// for what looks like a local path, files.
func (r *root) completeCp(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) >= 2 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if strings.Contains(toComplete, ":") {
		// CLAIM:PATH: the path in the sandbox is the user's to type.
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	typ, _, slash := strings.Cut(toComplete, "/")
	if strings.HasPrefix(toComplete, ".") || strings.HasPrefix(toComplete, "~") || slash && !isClaimType(typ) {
		return nil, cobra.ShellCompDirectiveDefault
	}
	names, ok := r.claimNames(cmd, toComplete, ":", nil)
	if !ok {
		return nil, cobra.ShellCompDirectiveDefault
	}
	return names, cobra.ShellCompDirectiveNoSpace
}

// registerKubeconfigCompletions completes --context, --cluster and --user
// from the kubeconfig, as kubectl does.
func registerKubeconfigCompletions(cmd *cobra.Command, r *root) {
	from := func(names func() []string) cobra.CompletionFunc {
		return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			var out []string
			for _, n := range names() {
				if strings.HasPrefix(n, toComplete) {
					out = append(out, n)
				}
			}
			slices.Sort(out)
			return out, cobra.ShellCompDirectiveNoFileComp
		}
	}
	raw := func(pick func(contexts, clusters, users []string) []string) func() []string {
		return func() []string {
			cfg, err := r.kube.ToRawKubeConfigLoader().RawConfig()
			if err != nil {
				return nil
			}
			var contexts, clusters, users []string
			for n := range cfg.Contexts {
				contexts = append(contexts, n)
			}
			for n := range cfg.Clusters {
				clusters = append(clusters, n)
			}
			for n := range cfg.AuthInfos {
				users = append(users, n)
			}
			return pick(contexts, clusters, users)
		}
	}
	_ = cmd.RegisterFlagCompletionFunc("context", from(raw(func(c, _, _ []string) []string { return c })))
	_ = cmd.RegisterFlagCompletionFunc("cluster", from(raw(func(_, c, _ []string) []string { return c })))
	_ = cmd.RegisterFlagCompletionFunc("user", from(raw(func(_, _, u []string) []string { return u })))
}
