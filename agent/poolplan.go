package agent

import (
	"cmp"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/pool"
)

// Reasons a warm pod is deleted, as PlanPool gives them and as the
// pods-deleted metric counts them.
const (
	// DeleteSurplus: the node keeps more warm pods than the pool asks for.
	DeleteSurplus = "surplus"
	// DeleteFailed: the warm pod's phase is Failed.
	DeleteFailed = "failed"
	// DeleteCompleted: the warm pod's phase is Succeeded (its container
	// exited and will not restart).
	DeleteCompleted = "completed"
	// DeleteStale: the warm pod was made from an older pool template.
	DeleteStale = "stale"
	// DeleteIneligible: the node no longer matches the pool's node selector
	// or has a taint the pool does not tolerate.
	DeleteIneligible = "ineligible"
	// DeleteStuck: the warm pod has not been Ready for longer than
	// PlanInput.StuckAfter (its runner crash-loops, or it never started):
	// it would hold a starting slot for ever.
	DeleteStuck = "stuck"
	// DeleteRunnerOutdated: the warm pod runs another runner than the one
	// the chart injects now (PlanInput.Runner); it is replaced one at a
	// time, once a pod with the current runner is Ready.
	DeleteRunnerOutdated = "runner-outdated"
)

// defaultOutdatedRetry is PlanInput.OutdatedRetry when unset.
const defaultOutdatedRetry = time.Minute

// RunnerProbeInterval is how often, at most, the agent asks the webhook
// which runner it injects (a dry-run create of a warm pod of the pool) while
// a pool is RunnerBehind.
const RunnerProbeInterval = 5 * time.Second

// Injects is what a dry-run create of a warm pod said about the runner the
// webhook injects now.
type Injects string

const (
	// InjectsUnknown: not asked yet, or the dry-run failed.
	InjectsUnknown Injects = ""
	// InjectsCurrent: the dry-run pod came back with PlanInput.Runner.
	InjectsCurrent Injects = "current"
	// InjectsOlder: the dry-run pod came back with another runner, or none.
	InjectsOlder Injects = "older"
)

// WebhookAnswer is what the agent last learned by asking the webhook which
// runner it injects now: the API server runs the mutating webhooks for a
// dry-run create (they declare no side effects) and returns the pod as they
// made it.
type WebhookAnswer struct {
	// Injects is the answer.
	Injects Injects
	// At is when the agent asked, on the clock of PlanInput.Now.
	At time.Time
	// Pods names the pool's pods the agent's cache showed when it asked:
	// they were created before the dry-run, so an answer of InjectsCurrent
	// means the webhook caught up since they came out outdated. (Names, not
	// creation times: those are the API server's, in whole seconds.)
	Pods []string
}

// PlanInput is what PlanPool decides from.
type PlanInput struct {
	// Pool is the SandboxPool.
	Pool *v1alpha1.SandboxPool
	// Node is the node the agent runs on.
	Node *corev1.Node
	// Pods are the pods of the pool on the node, as the agent's cache
	// sees them; pods of other pools or nodes are ignored.
	Pods []corev1.Pod
	// Unobserved is how many pods the agent created that its cache does
	// not show yet; they count as warm, starting pods.
	Unobserved int
	// Deleted names pods the agent deleted that its cache still shows
	// without a deletion timestamp; they count as gone.
	Deleted map[string]bool
	// MaxStarting bounds how many warm pods may be starting (created and
	// not yet Ready, unobserved ones included) at once; a short pool is
	// refilled in batches of at most this many. Zero or less means 1.
	MaxStarting int
	// StuckAfter replaces a warm pod that has not been Ready for this long
	// (since it was created, or since it was last Ready); zero never does.
	StuckAfter time.Duration
	// Now is the time StuckAfter and OutdatedRetry are measured to.
	Now time.Time
	// Runner is the runner image the webhook injects now (the chart's, the
	// agent's --runner-image). A warm pod whose sandbox.io/status names
	// another (pool.RunnerOutdated) is replaced, one at a time, surge
	// first. Empty: the runner is not compared.
	Runner string
	// OutdatedRetry is how long a pod created to replace an outdated one,
	// that came out outdated itself (the webhook does not inject Runner
	// yet: it is still rolling out), is kept before the next try. Zero or
	// less means one minute. It is the bound: a pod the webhook is known
	// (Webhook) to have caught up with goes at once.
	OutdatedRetry time.Duration
	// Webhook is what the agent last learned, by a dry-run create, about
	// the runner the webhook injects now (Plan.ProbeWebhook asks for it);
	// zero: nothing.
	Webhook WebhookAnswer
}

// Deletion is a pod to delete and why.
type Deletion struct {
	Pod    *corev1.Pod
	Reason string
}

// Plan is what the node should do for one pool, and what it counts.
type Plan struct {
	// Eligible reports whether the node keeps warm pods of the pool: its
	// labels match the pool's node selector and the pool tolerates its
	// NoSchedule and NoExecute taints. Why is set when it is not.
	Eligible bool
	Why      string
	// Desired is how many warm pods the node should keep: the pool's
	// PodsPerNode, or 0 on a node that is not eligible.
	Desired int32
	// Warm, Ready and Claimed count the pool's pods on the node as they
	// will be once the deletions are done (creations not counted): warm
	// pods of the current template, those of them Ready, and claimed ones.
	Warm, Ready, Claimed int32
	// Outdated counts the warm pods (of Warm) whose runner is not
	// PlanInput.Runner, still to be replaced.
	Outdated int32
	// RunnerBehind is set when the pool's newest warm pod came out with an
	// outdated runner although the agent created it to replace one: the
	// webhook did not inject PlanInput.Runner. Replacements wait until a
	// dry-run create made since shows that the webhook injects it now
	// (PlanInput.Webhook), or for OutdatedRetry.
	RunnerBehind bool
	// ProbeWebhook asks the caller to learn which runner the webhook
	// injects now (a dry-run create of a warm pod of the pool) and to plan
	// again with the answer in PlanInput.Webhook. Set while RunnerBehind,
	// at most every RunnerProbeInterval (from PlanInput.Webhook.At).
	ProbeWebhook bool
	// RecheckAfter, when positive, is how soon to plan again even without
	// an event (a replacement waits for the next probe or OutdatedRetry).
	RecheckAfter time.Duration
	// Starting is how many warm pods are starting (not Ready yet, or not
	// in the cache yet).
	Starting int
	// Create is how many warm pods to create now.
	Create int
	// Short is how many more warm pods the node needs than Create gives
	// (held back by MaxStarting); the agent tries again later.
	Short int
	// Delete lists the pods to delete.
	Delete []Deletion
}

// PlanPool decides, for one pool on one node, which warm pods to delete and
// how many to create, so that the node keeps exactly the pool's PodsPerNode
// warm pods of its current template. It is a pure function of its input:
//   - claimed pods are counted and never touched;
//   - pods being deleted (or that the agent deleted) count as gone;
//   - Failed and Succeeded warm pods are deleted and replaced;
//   - warm pods of an older template (LabelTemplateHash) are replaced;
//   - warm pods not Ready for longer than StuckAfter are replaced;
//   - surplus warm pods are deleted, those not Ready first, then those
//     of an outdated runner, then the newest;
//   - warm pods of an outdated runner (PlanInput.Runner) are replaced
//     surge first: while any is left the node keeps one pod more than
//     PodsPerNode; an outdated pod that is not Ready goes as soon as a pod
//     shows that the webhook injects the current runner; a replacement
//     that came out outdated (the webhook is behind) goes once a dry-run
//     made after it shows that the webhook caught up, or after
//     OutdatedRetry; a Ready one only
//     once every current pod is Ready, so that the pool never drops to no
//     Ready warm pod while fresh ones start, and at most one outdated pod
//     goes per plan;
//   - on a node that is not eligible every warm pod is surplus;
//   - creations are bounded by MaxStarting.
func PlanPool(in PlanInput) Plan {
	p := in.Pool
	var plan Plan
	plan.Eligible, plan.Why = NodeEligible(p, in.Node)
	if plan.Eligible {
		plan.Desired = max(p.Spec.WarmPodsPerNode(), 0)
	}
	hash := pool.TemplateHash(p)
	var healthy []*corev1.Pod
	for i := range in.Pods {
		pod := &in.Pods[i]
		if pod.Labels[v1alpha1.LabelPool] != p.Name || pod.Namespace != p.Namespace ||
			(in.Node != nil && pod.Spec.NodeName != in.Node.Name) {
			continue
		}
		if pod.DeletionTimestamp != nil || in.Deleted[pod.Name] {
			continue
		}
		switch pool.State(pod) {
		case v1alpha1.StateClaimed:
			plan.Claimed++
			continue
		case v1alpha1.StateWarm:
		default:
			// An orphan (the claim controller deletes it) or not a state
			// of ours: not counted, left alone.
			continue
		}
		switch {
		case pod.Status.Phase == corev1.PodFailed:
			plan.Delete = append(plan.Delete, Deletion{Pod: pod, Reason: DeleteFailed})
		case pod.Status.Phase == corev1.PodSucceeded:
			plan.Delete = append(plan.Delete, Deletion{Pod: pod, Reason: DeleteCompleted})
		case !plan.Eligible:
			plan.Delete = append(plan.Delete, Deletion{Pod: pod, Reason: DeleteIneligible})
		case pod.Labels[v1alpha1.LabelTemplateHash] != hash:
			plan.Delete = append(plan.Delete, Deletion{Pod: pod, Reason: DeleteStale})
		case in.StuckAfter > 0 && unreadySince(pod).Add(in.StuckAfter).Before(in.Now):
			plan.Delete = append(plan.Delete, Deletion{Pod: pod, Reason: DeleteStuck})
		default:
			healthy = append(healthy, pod)
		}
	}
	outdated := func(pod *corev1.Pod) bool { return pool.RunnerOutdated(pod, in.Runner) }
	// surge is the one pod more the node keeps while it replaces pods of
	// an outdated runner.
	surge := func(pods []*corev1.Pod) int {
		if plan.Desired > 0 && slices.ContainsFunc(pods, outdated) {
			return 1
		}
		return 0
	}
	if len(healthy) > int(plan.Desired)+surge(healthy) {
		// Keep the Ready, current and oldest (most likely warmed up) pods.
		slices.SortStableFunc(healthy, func(a, b *corev1.Pod) int {
			if ra, rb := pool.IsReady(a), pool.IsReady(b); ra != rb {
				if ra {
					return 1
				}
				return -1
			}
			if oa, ob := outdated(a), outdated(b); oa != ob {
				if oa {
					return -1
				}
				return 1
			}
			if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
				return c
			}
			return cmp.Compare(a.Name, b.Name)
		})
		// The fewest deletions that leave no surplus (the surge slot
		// closes once no outdated pod is left).
		surplus := len(healthy) - int(plan.Desired) - 1
		for len(healthy)-surplus > int(plan.Desired)+surge(healthy[surplus:]) {
			surplus++
		}
		for _, pod := range healthy[:surplus] {
			plan.Delete = append(plan.Delete, Deletion{Pod: pod, Reason: DeleteSurplus})
		}
		healthy = healthy[surplus:]
	}
	if d := planOutdated(in, &plan, healthy); d != nil {
		plan.Delete = append(plan.Delete, Deletion{Pod: d, Reason: DeleteRunnerOutdated})
		healthy = slices.DeleteFunc(healthy, func(p *corev1.Pod) bool { return p == d })
	}
	plan.Starting = in.Unobserved
	for _, pod := range healthy {
		plan.Warm++
		if outdated(pod) {
			plan.Outdated++
		}
		if pool.IsReady(pod) {
			plan.Ready++
		} else {
			plan.Starting++
		}
	}
	need := int(plan.Desired) + surge(healthy) - len(healthy) - in.Unobserved
	if need > 0 {
		room := max(in.MaxStarting, 1) - plan.Starting
		plan.Create = max(min(need, room), 0)
		plan.Short = need - plan.Create
	}
	return plan
}

// planOutdated picks the one pod of an outdated runner to delete now, if
// any, from the healthy warm pods left after the surplus went; it sets
// plan.RunnerBehind and plan.RecheckAfter.
func planOutdated(in PlanInput, plan *Plan, healthy []*corev1.Pod) *corev1.Pod {
	if in.Runner == "" {
		return nil
	}
	var old []*corev1.Pod
	current, currentStarting := 0, 0
	var newestCurrent time.Time
	for _, pod := range healthy {
		if pool.RunnerOutdated(pod, in.Runner) {
			old = append(old, pod)
			continue
		}
		current++
		if !pool.IsReady(pod) {
			currentStarting++
		}
		if t := pod.CreationTimestamp.Time; t.After(newestCurrent) {
			newestCurrent = t
		}
	}
	if len(old) == 0 {
		return nil
	}
	// Oldest first: the pods longest on the old runner go first.
	slices.SortStableFunc(old, func(a, b *corev1.Pod) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	if current == 0 {
		if len(healthy) <= int(plan.Desired) {
			// The surge pod is still to be created or seen.
			return nil
		}
		// The surge pod came out outdated too: the webhook still injected
		// the older runner. Keep it until the webhook injects the current
		// one, then try again.
		return behind(in, plan, old[len(old)-1])
	}
	// The webhook injects the current runner: an outdated pod that is not
	// Ready serves no claim and goes at once, unless it is newer than the
	// newest current pod (a webhook replica still injects the older
	// runner: replacing it at once could only churn).
	for _, pod := range old {
		if pool.IsReady(pod) {
			continue
		}
		if pod.CreationTimestamp.Time.Before(newestCurrent) {
			return pod
		}
		if d := behind(in, plan, pod); d != nil {
			return d
		}
	}
	// A Ready one goes only once every current pod is Ready (the fresh
	// one included) and the surge pod is there.
	if currentStarting == 0 && in.Unobserved == 0 && len(healthy) > int(plan.Desired) {
		return old[0]
	}
	return nil
}

// behind notes that pod, made to replace an outdated one, came out
// outdated itself (the webhook did not inject in.Runner): it returns pod
// (to try again) once a dry-run made after the pod existed got in.Runner,
// or once the pod is OutdatedRetry old; else nil, whether to ask the
// webhook now, and when to look again.
func behind(in PlanInput, plan *Plan, pod *corev1.Pod) *corev1.Pod {
	plan.RunnerBehind = true
	if in.Webhook.Injects == InjectsCurrent && slices.Contains(in.Webhook.Pods, pod.Name) {
		return pod
	}
	retry := in.OutdatedRetry
	if retry <= 0 {
		retry = defaultOutdatedRetry
	}
	age := in.Now.Sub(pod.CreationTimestamp.Time)
	if age >= retry {
		return pod
	}
	wait := retry - age
	// Ask the webhook once the last answer is RunnerProbeInterval old (at
	// once with none, or with one from the future: the clock moved back).
	probe := in.Webhook.At.Add(RunnerProbeInterval).Sub(in.Now)
	if in.Webhook.At.IsZero() || probe <= 0 || probe > RunnerProbeInterval {
		plan.ProbeWebhook = true
		probe = RunnerProbeInterval
	}
	wait = min(wait, probe)
	if plan.RecheckAfter == 0 || wait < plan.RecheckAfter {
		plan.RecheckAfter = wait
	}
	return nil
}

// unreadySince is when a pod that is not Ready stopped being Ready: the
// transition time of its Ready condition, else its creation. A Ready pod
// gives the far future.
func unreadySince(pod *corev1.Pod) time.Time {
	if pool.IsReady(pod) {
		return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	return pod.CreationTimestamp.Time
}

// NodeEligible reports whether node keeps warm pods of pool p, and if not,
// why (pool.NodeEligible; the claim controller counts the same nodes).
func NodeEligible(p *v1alpha1.SandboxPool, node *corev1.Node) (bool, string) {
	return pool.NodeEligible(p, node)
}
