package charts

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
)

// TestAgentPools renders the agent with warm pools on (the default) and
// off: its flags, the RBAC the reconciler needs, and the policy that keeps
// each agent to its own node's pool pods.
func TestAgentPools(t *testing.T) {
	t.Parallel()
	objs := render(t, Release{Namespace: "sbx", Values: map[string]any{"agent": map[string]any{
		"enabled": true, "pools": map[string]any{"maxCreates": 3, "refillDelay": "2s"},
	}}})
	ds := one[appsv1.DaemonSet](t, objs, "DaemonSet")
	args := ds.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--pools=true", "--pool-max-creates=3", "--pool-refill-delay=2s"} {
		if !slices.Contains(args, want) {
			t.Errorf("agent args %v lack %s", args, want)
		}
	}
	var rules []rbacv1.PolicyRule
	var binding *rbacv1.ClusterRoleBinding
	for _, u := range objs {
		switch {
		case u.GetKind() == "ClusterRole" && u.GetName() == "sandbox-injector-agent-pools":
			var cr rbacv1.ClusterRole
			if err := Into(u, &cr); err != nil {
				t.Fatal(err)
			}
			rules = cr.Rules
		case u.GetKind() == "ClusterRoleBinding" && u.GetName() == "sandbox-injector-agent-pools":
			binding = new(rbacv1.ClusterRoleBinding)
			if err := Into(u, binding); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "create", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"sandbox.io"}, Resources: []string{"sandboxpools"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Errorf("pool rules (-want +got):\n%s", diff)
	}
	if binding == nil || len(binding.Subjects) != 1 || binding.Subjects[0].Name != ds.Spec.Template.Spec.ServiceAccountName ||
		binding.Subjects[0].Namespace != "sbx" {
		t.Errorf("binding %+v, want the agent's ServiceAccount", binding)
	}
	vap := policyNamed(t, objs, "sandbox-injector-agent-pools")
	if vap == nil {
		t.Fatal("no ValidatingAdmissionPolicy sandbox-injector-agent-pools")
	}
	if got := vap.Spec.MatchConditions[0].Expression; !strings.Contains(got, "system:serviceaccount:sbx:"+ds.Spec.Template.Spec.ServiceAccountName) {
		t.Errorf("policy matches %q, want only the agent's ServiceAccount", got)
	}
	if len(Find(objs, "ValidatingAdmissionPolicyBinding")) < 2 {
		t.Error("no binding for the agent's pod policy")
	}

	off := render(t, Release{Values: map[string]any{"agent": map[string]any{"enabled": true, "pools": map[string]any{"enabled": false}}}})
	ds = one[appsv1.DaemonSet](t, off, "DaemonSet")
	if !slices.Contains(ds.Spec.Template.Spec.Containers[0].Args, "--pools=false") {
		t.Errorf("args %v, want --pools=false", ds.Spec.Template.Spec.Containers[0].Args)
	}
	for _, u := range off {
		if strings.HasSuffix(u.GetName(), "-agent-pools") {
			t.Errorf("%s %s rendered with agent.pools.enabled false", u.GetKind(), u.GetName())
		}
	}
}

func policyNamed(t *testing.T, objs []*unstructured.Unstructured, name string) *admissionregistrationv1.ValidatingAdmissionPolicy {
	t.Helper()
	for _, u := range Find(objs, "ValidatingAdmissionPolicy") {
		if u.GetName() == name {
			var p admissionregistrationv1.ValidatingAdmissionPolicy
			if err := Into(u, &p); err != nil {
				t.Fatal(err)
			}
			return &p
		}
	}
	return nil
}

// TestChartPools renders SandboxPools from the values and checks they
// decode into the API type with every field kept; bad entries are refused.
func TestChartPools(t *testing.T) {
	t.Parallel()
	objs := render(t, Release{Values: map[string]any{"pools": []any{
		map[string]any{
			"name": "python", "namespace": "team-a", "podsPerNode": 3,
			"template": map[string]any{
				"image": "python:3.13", "command": []any{"sleep", "infinity"},
				"env":       []any{map[string]any{"name": "LANG", "value": "C.UTF-8"}},
				"resources": map[string]any{"requests": map[string]any{"cpu": "50m"}},
			},
			"nodeSelector":      map[string]any{"sandbox.io/pool-node": "true"},
			"tolerations":       []any{map[string]any{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}},
			"priorityClassName": "low",
		},
		map[string]any{"name": "node", "namespace": "team-b", "template": map[string]any{"image": "node:24"}},
	}}})
	var pools []v1alpha1.SandboxPool
	for _, u := range Find(objs, "SandboxPool") {
		var p v1alpha1.SandboxPool
		if err := Into(u, &p); err != nil {
			t.Fatal(err)
		}
		pools = append(pools, p)
	}
	if len(pools) != 2 {
		t.Fatalf("%d SandboxPools rendered, want 2", len(pools))
	}
	p := pools[0]
	if p.Name != "python" || p.Namespace != "team-a" || p.Spec.WarmPodsPerNode() != 3 || p.Spec.Template.Image != "python:3.13" ||
		!slices.Equal(p.Spec.Template.Command, []string{"sleep", "infinity"}) || len(p.Spec.Template.Env) != 1 ||
		p.Spec.Template.Resources.Requests.Cpu().String() != "50m" || p.Spec.NodeSelector["sandbox.io/pool-node"] != "true" ||
		len(p.Spec.Tolerations) != 1 || p.Spec.PriorityClassName != "low" {
		t.Errorf("pool rendered as %+v", p)
	}
	if pools[1].Name != "node" || pools[1].Namespace != "team-b" || pools[1].Spec.Template.Image != "node:24" {
		t.Errorf("second pool %+v", pools[1])
	}
	if none := render(t, Release{}); len(Find(none, "SandboxPool")) != 0 {
		t.Error("SandboxPools rendered with no pools in the values")
	}

	helm := requireHelm(t)
	for _, tc := range []struct {
		name string
		pool map[string]any
		want string
	}{
		{"no namespace", map[string]any{"name": "a", "template": map[string]any{"image": "x"}}, "namespace"},
		{"no image", map[string]any{"name": "a", "namespace": "b", "template": map[string]any{}}, "image"},
		{"unknown key", map[string]any{"name": "a", "namespace": "b", "size": 3, "template": map[string]any{"image": "x"}}, "size"},
		{"too many per node", map[string]any{"name": "a", "namespace": "b", "podsPerNode": 101, "template": map[string]any{"image": "x"}}, "podsPerNode"},
		{"bad name", map[string]any{"name": "A_b", "namespace": "b", "template": map[string]any{"image": "x"}}, "name"},
	} {
		_, err := RenderRelease(t.Context(), helm, Release{Values: map[string]any{"pools": []any{tc.pool}}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %q", tc.name, err, tc.want)
		}
	}
	_, err := RenderRelease(t.Context(), helm, Release{Values: map[string]any{"agent": map[string]any{"pools": map[string]any{"maxCreates": 0}}}})
	if err == nil || !strings.Contains(err.Error(), "maxCreates") {
		t.Errorf("agent.pools.maxCreates 0: err = %v", err)
	}
}

// TestAgentPodPolicy installs the chart's agent RBAC and pod policy on a
// real API server and acts as the agent's ServiceAccount (impersonated,
// with the node name its bound token carries): it may create and delete
// pool pods on its own node only.
func TestAgentPodPolicy(t *testing.T) {
	t.Parallel()
	admin := requireAPIServer(t)
	createsPoolPods(t, admin)
	const releaseNS, ns = "poolpolicy-system", "poolpolicy"
	createNamespace(t, admin, releaseNS, nil)
	createNamespace(t, admin, ns, nil)
	objs := render(t, Release{Name: "pp", Namespace: releaseNS, Values: map[string]any{"agent": map[string]any{"enabled": true}}})
	var sa string
	for _, u := range objs {
		if u.GetKind() == "ServiceAccount" && strings.HasSuffix(u.GetName(), "-agent") {
			sa = u.GetName()
		}
		if strings.HasSuffix(u.GetName(), "-agent-pools") {
			if err := admin.Create(t.Context(), u.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
	}
	if sa == "" {
		t.Fatal("no agent ServiceAccount rendered")
	}
	if err := admin.Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	agentOn := func(node string) client.Client {
		cfg := rest.CopyConfig(apiServer.cfg)
		cfg.Impersonate = rest.ImpersonationConfig{
			UserName: "system:serviceaccount:" + releaseNS + ":" + sa,
			Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNS, "system:authenticated"},
		}
		if node != "" {
			cfg.Impersonate.Extra = map[string][]string{"authentication.kubernetes.io/node-name": {node}}
		}
		c, err := client.New(cfg, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pod := func(name, node string, poolLabel bool) *corev1.Pod {
		p := testPod(ns, name, nil, func(p *corev1.Pod) {
			p.Spec.NodeName = node
			if poolLabel {
				p.Labels = map[string]string{v1alpha1.LabelPool: "py", v1alpha1.LabelState: v1alpha1.StateWarm}
			}
		})
		return p
	}
	a := agentOn("node-a")

	// The policy reaches the API server's admission a moment after it is
	// created: wait until a pod for another node is refused.
	eventually(t, "the agent pod policy in force", func() error {
		err := a.Create(t.Context(), pod("probe", "node-b", true), client.DryRunAll)
		if err == nil {
			return fmt.Errorf("a pod on another node was admitted")
		}
		if !strings.Contains(err.Error(), "only pods bound to its own node") {
			return err
		}
		return nil
	})

	if err := a.Create(t.Context(), pod("own", "node-a", true)); err != nil {
		t.Errorf("the agent may not create a pool pod on its own node: %v", err)
	}
	// Its dry-run create of such a pod (how it asks the webhook which
	// runner it injects, during upgrades) too.
	if err := a.Create(t.Context(), pod("own-dry-run", "node-a", true), client.DryRunAll); err != nil {
		t.Errorf("the agent may not dry-run create a pool pod on its own node: %v", err)
	}
	for _, tc := range []struct {
		name string
		c    client.Client
		pod  *corev1.Pod
		want string
	}{
		{"another node", a, pod("other", "node-b", true), "only pods bound to its own node"},
		{"not a pool pod", a, pod("plain", "node-a", false), "only pods of a warm pool"},
		{"unbound", a, pod("unbound", "", true), "only pods bound to its own node"},
		{"a token without a node", agentOn(""), pod("nonode", "node-a", true), "names none"},
	} {
		err := tc.c.Create(t.Context(), tc.pod)
		if err == nil || !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want a refusal saying %q", tc.name, err, tc.want)
		}
	}
	// Anyone else is not concerned.
	if err := admin.Create(t.Context(), pod("others", "node-b", true)); err != nil {
		t.Fatalf("the policy refuses another user: %v", err)
	}
	err := a.Delete(t.Context(), pod("others", "node-b", true), client.GracePeriodSeconds(0))
	if err == nil || !strings.Contains(err.Error(), "only pods bound to its own node") {
		t.Errorf("deleting another node's pod: err = %v, want a refusal", err)
	}
	if err := a.Delete(t.Context(), pod("own", "node-a", true), client.GracePeriodSeconds(0)); err != nil {
		t.Errorf("the agent may not delete its own node's pool pod: %v", err)
	}
}

// TestChartPoolsServerSide installs the SandboxPool CRD on a real API server
// and creates the chart's pools there (dry-run, strict field validation):
// what the values pass through is a valid SandboxPool.
func TestChartPoolsServerSide(t *testing.T) {
	t.Parallel()
	c := requireAPIServer(t)
	installCRDs(t)
	createNamespace(t, c, "pools-a", nil)
	objs := render(t, Release{Values: map[string]any{"pools": []any{map[string]any{
		"name": "python", "namespace": "pools-a", "podsPerNode": 2,
		"template": map[string]any{
			"image": "python:3.13", "args": []any{"-c", "pass"},
			"env":              []any{map[string]any{"name": "A", "value": "1"}},
			"resources":        map[string]any{"limits": map[string]any{"memory": "64Mi"}},
			"imagePullSecrets": []any{map[string]any{"name": "pull"}}, "serviceAccountName": "runner",
		},
		"tolerations": []any{map[string]any{"operator": "Exists"}}, "priorityClassName": "low",
	}}}})
	pools := Find(objs, "SandboxPool")
	if len(pools) != 1 {
		t.Fatalf("%d pools rendered", len(pools))
	}
	eventually(t, "the chart's pool accepted by the API server", func() error {
		return c.Create(t.Context(), pools[0].DeepCopy(), client.DryRunAll)
	})
}
