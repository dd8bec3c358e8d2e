package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"sandbox.io/injector/claim"
)

func newCmdPods(r *root) *cobra.Command {
	return listCommand(&cobra.Command{
		Use:   "pods [POOL]",
		Short: "List the pods of the pools with their state: warm, or claimed and by which claim",
		Long: `List the pods of one pool (or of every pool) in the namespace (or in all with
-A): their state, the object that controls them (the SandboxPool while warm,
the SandboxClaim once claimed), whether they are Ready, their node and age;
-o wide adds the pod IP, the origin of a claimed pod (warm or cold) and when
it was claimed (its claim's status.boundAt, so -o wide lists claims too, and
leaves CLAIMED out when you may not).

A claim takes a warm pod by its owner reference; with the chart's
claims.relabelOnTake=false the pod keeps its sandbox.io/state=warm label, so
"kubectl get pods -l sandbox.io/state=warm" also lists taken pods; this
command tells them apart. It needs RBAC to list pods, which a claimant has
no need of.`,
		Example: `  sandboxctl pods
  sandboxctl pods python -o wide
  sandboxctl pods -A -o custom-columns=POD:.metadata.name,NODE:.spec.nodeName`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: r.completePools,
	}, "list the pool pods of every namespace", func(cmd *cobra.Command, args []string, out *outputFlags, all bool) error {
		poolName, noun := "", "pool pods"
		if len(args) == 1 {
			poolName, noun = args[0], fmt.Sprintf("pods of pool %s", args[0])
		}
		// When each claimed pod was bound is its claim's status.boundAt
		// (the take changes nothing on the pod but its owner reference),
		// read for -o wide, the only output that shows it.
		var boundAt map[types.NamespacedName]time.Time
		fetch := func(c *claim.Client, ctx context.Context, ns string) ([]corev1.Pod, error) {
			pods, err := c.PoolPods(ctx, ns, poolName)
			if err != nil || out.format() != outputWide {
				return pods, err
			}
			claims, err := c.List(ctx, ns)
			if apierrors.IsForbidden(err) {
				// The pods are what was asked for: CLAIMED stays <none>.
				fmt.Fprintf(r.stderr, "Warning: CLAIMED is left out: %v\n", err)
				return pods, nil
			}
			if err != nil {
				return nil, err
			}
			boundAt = make(map[types.NamespacedName]time.Time, len(claims))
			for i := range claims {
				if b := claims[i].Status.BoundAt; b != nil {
					boundAt[types.NamespacedName{Namespace: claims[i].Namespace, Name: claims[i].Name}] = b.Time
				}
			}
			return pods, nil
		}
		table := func(pods []corev1.Pod, now time.Time) *metav1.Table { return podTable(pods, boundAt, now) }
		return runList(cmd, r, out, all, corev1.SchemeGroupVersion.WithKind("Pod"), noun, fetch, table)
	})
}
