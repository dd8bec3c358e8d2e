package main

import (
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/pool"
)

const none = "<none>"

// claimTable is the table of list (and claim -o wide): the printer columns
// of the CRD, the expiry as time left, and with -o wide where the sandbox
// runs and why it is not bound.
func claimTable(claims []v1alpha1.SandboxClaim, now time.Time) *metav1.Table {
	t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name"},
		{Name: "Pool", Type: "string"},
		{Name: "Phase", Type: "string"},
		{Name: "Pod", Type: "string"},
		{Name: "Origin", Type: "string"},
		{Name: "Expires", Type: "string"},
		{Name: "Age", Type: "string"},
		{Name: "Node", Type: "string", Priority: 1},
		{Name: "Address", Type: "string", Priority: 1},
		{Name: "Reason", Type: "string", Priority: 1},
	}}
	for i := range claims {
		c := &claims[i]
		st := c.Status
		addr := none
		if st.PodIP != "" && st.RunnerPort != 0 {
			addr = net.JoinHostPort(st.PodIP, strconv.Itoa(int(st.RunnerPort)))
		}
		reason := none
		if cond := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionBound); cond != nil {
			reason = cond.Reason
		}
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells: []any{c.Name, c.Spec.PoolName, orNone(string(st.Phase)), orNone(st.PodName), orNone(string(st.Origin)),
				expires(st.ExpiresAt, now), age(c.CreationTimestamp, now), orNone(st.NodeName), addr, reason},
			Object: runtime.RawExtension{Object: c},
		})
	}
	return t
}

// poolReady is the pool condition the claim controller keeps: are all the
// desired warm pods Ready.
const poolReady = "Ready"

// poolTable is the table of pools: the pool's totals, and with -o wide its
// Ready condition.
func poolTable(pools []v1alpha1.SandboxPool, now time.Time) *metav1.Table {
	t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name"},
		{Name: "Image", Type: "string"},
		{Name: "Per node", Type: "integer"},
		{Name: "Desired", Type: "integer"},
		{Name: "Ready", Type: "integer"},
		{Name: "Warm", Type: "integer"},
		{Name: "Claimed", Type: "integer"},
		{Name: "Age", Type: "string"},
		{Name: "Reason", Type: "string", Priority: 1},
		{Name: "Message", Type: "string", Priority: 1},
	}}
	for i := range pools {
		p := &pools[i]
		st := p.Status
		reason, msg := none, none
		if cond := meta.FindStatusCondition(st.Conditions, poolReady); cond != nil {
			reason, msg = orNone(cond.Reason), orNone(cond.Message)
		}
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells: []any{p.Name, p.Spec.Template.Image, int64(p.Spec.WarmPodsPerNode()), int64(st.Desired), int64(st.Ready),
				int64(st.Warm), int64(st.Claimed), age(p.CreationTimestamp, now), reason, msg},
			Object: runtime.RawExtension{Object: p},
		})
	}
	return t
}

// podTable is the table of pool pods: each pod's state as the claim
// controller sees it (pool.State: claimed once a SandboxClaim controls it,
// whatever its labels say), its controller, readiness, node and age; with
// -o wide its IP, origin and the time its claim was bound (boundAt, by
// claim).
func podTable(pods []corev1.Pod, boundAt map[types.NamespacedName]time.Time, now time.Time) *metav1.Table {
	t := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name"},
		{Name: "Pool", Type: "string"},
		{Name: "State", Type: "string"},
		{Name: "Controlled by", Type: "string"},
		{Name: "Ready", Type: "string"},
		{Name: "Status", Type: "string"},
		{Name: "Node", Type: "string"},
		{Name: "Age", Type: "string"},
		{Name: "IP", Type: "string", Priority: 1},
		{Name: "Origin", Type: "string", Priority: 1},
		{Name: "Claimed", Type: "string", Priority: 1},
	}}
	for i := range pods {
		p := &pods[i]
		state := orNone(pool.State(p))
		owner := none
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
			owner = ref.Kind + "/" + ref.Name
		}
		ready := strconv.FormatBool(pool.IsReady(p))
		status := string(p.Status.Phase)
		if p.DeletionTimestamp != nil {
			status = "Terminating"
		}
		origin, claimed := none, none
		if state == v1alpha1.StateClaimed {
			origin = pool.Origin(p)
			if at, ok := boundAt[types.NamespacedName{Namespace: p.Namespace, Name: pool.ClaimOwner(p)}]; ok {
				claimed = duration.HumanDuration(now.Sub(at)) + " ago"
			}
		}
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells: []any{p.Name, orNone(p.Labels[v1alpha1.LabelPool]), state, owner, ready, orNone(status),
				orNone(p.Spec.NodeName), age(p.CreationTimestamp, now), orNone(p.Status.PodIP), origin, claimed},
			Object: runtime.RawExtension{Object: p},
		})
	}
	return t
}

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

// expires is the time left until at ("in 9m"), "expired", or <none>.
func expires(at *metav1.Time, now time.Time) string {
	switch {
	case at == nil:
		return none
	case !at.After(now):
		return "expired"
	}
	return "in " + duration.HumanDuration(at.Sub(now))
}

func age(created metav1.Time, now time.Time) string {
	if created.IsZero() {
		return none
	}
	return duration.HumanDuration(now.Sub(created.Time))
}
