package charts

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/pool"
)

// TestIsolationRender checks what pool isolation renders: the webhook's
// --runner-from (its own pods first, then claims.network.runnerFrom), its
// NetworkPolicy and Role rights, the agent's pull secrets by name.
func TestIsolationRender(t *testing.T) {
	t.Parallel()
	objs := render(t, Release{Namespace: "sbx", Values: map[string]any{"agent": map[string]any{
		"enabled": true,
		"prepull": map[string]any{"images": []any{
			map[string]any{"image": "reg.local/app:v1", "pullSecrets": []any{"team-a/pull", "team-a/other", "sbx/regcred"}},
			map[string]any{"image": "reg.local/app:v2", "pullSecrets": []any{"team-a/pull"}},
		}},
	}}})
	dep := one[appsv1.Deployment](t, objs, "Deployment")
	var runnerFrom string
	for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--runner-from="); ok {
			runnerFrom = v
		}
	}
	var peers []networkingv1.NetworkPolicyPeer
	if err := json.Unmarshal([]byte(runnerFrom), &peers); err != nil {
		t.Fatalf("--runner-from=%s: %v", runnerFrom, err)
	}
	if len(peers) != 2 || peers[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "sbx" ||
		peers[0].PodSelector.MatchLabels["app.kubernetes.io/component"] != "webhook" ||
		peers[1].PodSelector == nil || len(peers[1].PodSelector.MatchLabels) != 0 || peers[1].NamespaceSelector != nil {
		t.Errorf("--runner-from %s, want the webhook's pods, then the pool's own namespace", runnerFrom)
	}
	if !slices.Contains(dep.Spec.Template.Spec.Containers[0].Args, "--agent-service-account=sbx/sandbox-injector-agent") {
		t.Errorf("args %v lack --agent-service-account", dep.Spec.Template.Spec.Containers[0].Args)
	}

	roles := map[string][]string{}
	for _, u := range Find(objs, "Role") {
		if u.GetName() != "sandbox-injector-agent-prepull-secrets" {
			continue
		}
		var r rbacv1.Role
		if err := Into(u, &r); err != nil {
			t.Fatal(err)
		}
		if len(r.Rules) != 1 || !slices.Equal(r.Rules[0].Verbs, []string{"get"}) {
			t.Errorf("Role %s/%s rules %+v, want get by name", u.GetNamespace(), u.GetName(), r.Rules)
		}
		roles[u.GetNamespace()] = r.Rules[0].ResourceNames
	}
	if fmt.Sprint(roles) != "map[sbx:[regcred] team-a:[other pull]]" {
		t.Errorf("pull secret Roles %v, want one per namespace naming its secrets", roles)
	}

	off := render(t, Release{Values: map[string]any{"claims": map[string]any{"network": map[string]any{"policies": false}}, "agent": map[string]any{"enabled": false}}})
	if d := one[appsv1.Deployment](t, off, "Deployment"); !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--pool-network-policies=false") {
		t.Errorf("claims.network.policies false: args %v", d.Spec.Template.Spec.Containers[0].Args)
	}
	for _, u := range off {
		if u.GetName() == "sandbox-injector-isolation" {
			t.Errorf("%s %s rendered with neither policies nor the agent", u.GetKind(), u.GetName())
		}
	}
}

// createScoped creates the named policy and its binding from objs on the
// shared API server, the binding limited to the namespaces ns
// (comma-separated) when it is set, so that tests running beside it are not
// concerned.
func createScoped(t *testing.T, c client.Client, objs []*unstructured.Unstructured, name, ns string) {
	t.Helper()
	var found int
	for _, u := range objs {
		if u.GetName() != name {
			continue
		}
		switch u.GetKind() {
		case "ValidatingAdmissionPolicy":
		case "ValidatingAdmissionPolicyBinding":
			if ns != "" {
				u = u.DeepCopy()
				if err := unstructured.SetNestedField(u.Object, map[string]any{
					"matchExpressions": []any{map[string]any{"key": "kubernetes.io/metadata.name", "operator": "In", "values": toAny(strings.Split(ns, ","))}},
				}, "spec", "matchResources", "namespaceSelector"); err != nil {
					t.Fatal(err)
				}
			}
		default:
			continue
		}
		found++
		if err := c.Create(t.Context(), u.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %s %s: %v", u.GetKind(), name, err)
		}
	}
	if found != 2 {
		t.Fatalf("%d objects named %s, want a policy and its binding", found, name)
	}
}

// impersonate is a client acting as user (with groups, and the node claim
// of a pod-bound token when node is set).
func impersonate(t *testing.T, user, node string, groups ...string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(apiServer.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	if node != "" {
		cfg.Impersonate.Extra = map[string][]string{"authentication.kubernetes.io/node-name": {node}}
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func refusedSaying(err error, want string) error {
	if err == nil {
		return fmt.Errorf("admitted, want a refusal saying %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		return fmt.Errorf("refused with %w, want %q", err, want)
	}
	return nil
}

// TestAgentNodePolicy: the agent may change only its own Node's sandbox.io/
// labels and annotations; tested by impersonation against the real API
// server with the chart's policy.
func TestAgentNodePolicy(t *testing.T) {
	t.Parallel()
	admin := requireAPIServer(t)
	objs := render(t, Release{Name: "np", Namespace: "np-system", Values: map[string]any{"agent": map[string]any{"enabled": true}}})
	createScoped(t, admin, objs, "np-sandbox-injector-agent-nodes", "")
	for _, name := range []string{"np-node-a", "np-node-b"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
		if err := admin.Create(t.Context(), n); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	user := "system:serviceaccount:np-system:np-sandbox-injector-agent"
	// system:masters lets RBAC pass, so that only the policy decides.
	agent := impersonate(t, user, "np-node-a", "system:masters")
	patch := func(c client.Client, node, body string) error {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
		return c.Patch(t.Context(), n, client.RawPatch(types.MergePatchType, []byte(body)))
	}
	eventually(t, "the agent node policy in force", func() error {
		return refusedSaying(patch(agent, "np-node-b", `{"metadata":{"labels":{"sandbox.io/image-volume":"true"}}}`), "may write only its own Node")
	})
	for _, body := range []string{
		`{"metadata":{"labels":{"sandbox.io/image-volume":"true"}}}`,
		`{"metadata":{"annotations":{"sandbox.io/prepull":"present 1/1"}}}`,
		`{"metadata":{"labels":{"sandbox.io/image-volume":null}}}`,
	} {
		if err := patch(agent, "np-node-a", body); err != nil {
			t.Errorf("the agent patching its own node with %s: %v", body, err)
		}
	}
	for _, tc := range []struct {
		name, node, body, want string
		c                      client.Client
	}{
		{"another node", "np-node-b", `{"metadata":{"annotations":{"sandbox.io/prepull":"x"}}}`, "may write only its own Node", agent},
		{"a label outside sandbox.io", "np-node-a", `{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":""}}}`, "only sandbox.io/ labels", agent},
		{"removing a label", "np-node-a", `{"metadata":{"labels":{"kubernetes.io/hostname":null}}}`, "only sandbox.io/ labels", agent},
		{"an annotation outside sandbox.io", "np-node-a", `{"metadata":{"annotations":{"a":"b"}}}`, "only sandbox.io/ annotations", agent},
		{"the spec", "np-node-a", `{"spec":{"unschedulable":true}}`, "may not change its Node's spec", agent},
		{"a taint", "np-node-a", `{"spec":{"taints":[{"key":"x","effect":"NoSchedule"}]}}`, "may not change its Node's spec", agent},
		{"a token without a node", "np-node-a", `{"metadata":{"labels":{"sandbox.io/image-volume":"true"}}}`, "names none", impersonate(t, user, "", "system:masters")},
	} {
		if err := refusedSaying(patch(tc.c, tc.node, tc.body), tc.want); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// Anyone else is not concerned.
	if err := patch(admin, "np-node-b", `{"metadata":{"labels":{"other":"x"}}}`); err != nil {
		t.Errorf("the policy refuses another user: %v", err)
	}
}

// TestPoolPodCreatorsPolicy: only the agent, the claim controller and
// claims.extraPoolPodCreators create pods labelled sandbox.io/pool or move a
// pod's pool labels.
func TestPoolPodCreatorsPolicy(t *testing.T) {
	t.Parallel()
	admin := requireAPIServer(t)
	createsPoolPods(t, admin)
	const ns = "poolcreators"
	createNamespace(t, admin, ns, nil)
	objs := render(t, Release{Name: "pc", Namespace: "pc-system", Values: map[string]any{
		"agent":  map[string]any{"enabled": true},
		"claims": map[string]any{"extraPoolPodCreators": []any{map[string]any{"group": "platform"}, map[string]any{"user": "ci-bot"}}},
	}})
	createScoped(t, admin, objs, "pc-sandbox-injector-pool-pods", ns)
	if err := admin.Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	labelled := func(name string) *corev1.Pod {
		return testPod(ns, name, nil, func(p *corev1.Pod) {
			p.Labels = map[string]string{v1alpha1.LabelPool: "py", v1alpha1.LabelState: v1alpha1.StateWarm}
		})
	}
	const refusal = "may create pods labelled sandbox.io/pool"
	eventually(t, "the pool pod policy in force", func() error {
		return refusedSaying(admin.Create(t.Context(), labelled("probe"), client.DryRunAll), refusal)
	})
	for _, tc := range []struct {
		name  string
		c     client.Client
		admit bool
	}{
		{"the claim controller", impersonate(t, "system:serviceaccount:pc-system:pc-sandbox-injector", "", "system:masters"), true},
		{"the node agent", impersonate(t, "system:serviceaccount:pc-system:pc-sandbox-injector-agent", "", "system:masters"), true},
		{"an extra group", impersonate(t, "carol", "", "system:masters", "platform"), true},
		{"an extra user", impersonate(t, "ci-bot", "", "system:masters"), true},
		{"a cluster admin", admin, false},
		{"another ServiceAccount", impersonate(t, "system:serviceaccount:"+ns+":default", "", "system:masters"), false},
		// What it makes from a tenant's ReplicaSet without ServiceAccount
		// credentials; it may only remove owner references (below).
		{"kube-controller-manager", impersonate(t, "system:kube-controller-manager", "", "system:masters"), false},
	} {
		err := tc.c.Create(t.Context(), labelled("p-"+strings.ToLower(strings.ReplaceAll(tc.name, " ", "-"))), client.DryRunAll)
		if tc.admit && err != nil {
			t.Errorf("%s creating a pool pod: %v", tc.name, err)
		}
		if !tc.admit {
			if err := refusedSaying(err, refusal); err != nil {
				t.Errorf("%s creating a pool pod: %v", tc.name, err)
			}
		}
	}
	// Labelling a plain pod as a pool's, or moving a pool pod's state, is
	// refused too; other labels are anyone's.
	plain := testPod(ns, "plain", nil, nil)
	if err := admin.Create(t.Context(), plain); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"metadata":{"labels":{"sandbox.io/pool":"py","sandbox.io/state":"warm"}}}`,
		`{"metadata":{"labels":{"sandbox.io/state":"warm"}}}`,
	} {
		err := admin.Patch(t.Context(), plain.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(body)))
		if err := refusedSaying(err, "change their pool labels"); err != nil {
			t.Errorf("patching %s: %v", body, err)
		}
	}
	if err := admin.Patch(t.Context(), plain.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"x"}}}`))); err != nil {
		t.Errorf("an ordinary label: %v", err)
	}
	// The claim nonce is guarded the same way: whoever changes it gets the
	// pod's runner to refuse the controller's credential.
	nonce := `{"metadata":{"annotations":{"sandbox.io/claim-nonce":"chosen-by-a-tenant"}}}`
	if err := refusedSaying(admin.Patch(t.Context(), plain.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(nonce))), "or claim nonce"); err != nil {
		t.Errorf("patching %s: %v", nonce, err)
	}
	if err := admin.Patch(t.Context(), plain.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"note":"x"}}}`))); err != nil {
		t.Errorf("an ordinary annotation: %v", err)
	}
	// A pool pod's owner references are its state (a claim takes a warm pod
	// by becoming its controller): only the controller and the agent change
	// them; the garbage collector (orphaning) may only remove them.
	asController := impersonate(t, "system:serviceaccount:pc-system:pc-sandbox-injector", "", "system:masters")
	gc := impersonate(t, "system:serviceaccount:kube-system:generic-garbage-collector", "", "system:masters")
	kcm := impersonate(t, "system:kube-controller-manager", "", "system:masters")
	poolPod := labelled("owned")
	poolPod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "sandbox.io/v1alpha1", Kind: "SandboxPool", Name: "py", UID: "0b9e3d2c-1a4f-4e6d-8c7b-5a4f3e2d1c0b", Controller: ptr.To(true)}}
	if err := asController.Create(t.Context(), poolPod); err != nil {
		t.Fatal(err)
	}
	const (
		take    = `{"metadata":{"ownerReferences":[{"apiVersion":"sandbox.io/v1alpha1","kind":"SandboxClaim","name":"c","uid":"6f1c2a4e-0d3b-4c5a-9e8f-7a6b5c4d3e2f","controller":true}]}}`
		orphan  = `{"metadata":{"ownerReferences":null}}`
		relabel = `{"metadata":{"ownerReferences":null,"labels":{"sandbox.io/state":"claimed"}}}`
	)
	for _, tc := range []struct {
		name, patch string
		c           client.Client
		admit       bool
	}{
		{"a cluster admin taking it", take, admin, false},
		{"another ServiceAccount taking it", take, impersonate(t, "system:serviceaccount:"+ns+":default", "", "system:masters"), false},
		{"the claim controller taking it", take, asController, true},
		{"the garbage collector taking it", take, gc, false},
		{"a cluster admin orphaning it", orphan, admin, false},
		{"the garbage collector orphaning it", orphan, gc, true},
		{"kube-controller-manager orphaning it", orphan, kcm, true},
		{"the garbage collector orphaning and relabelling it", relabel, gc, false},
	} {
		err := tc.c.Patch(t.Context(), poolPod.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(tc.patch)), client.DryRunAll)
		if tc.admit && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.admit {
			if err := refusedSaying(err, "owner references"); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
	}
	if err := admin.Patch(t.Context(), plain.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"c","uid":"%s"}]}}`, "6f1c2a4e-0d3b-4c5a-9e8f-7a6b5c4d3e2f"))), client.DryRunAll); err != nil {
		t.Errorf("owner references of a plain pod: %v", err)
	}
	asAgent := impersonate(t, "system:serviceaccount:pc-system:pc-sandbox-injector-agent", "", "system:masters")
	if err := asAgent.Patch(t.Context(), plain.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"sandbox.io/claim-nonce":"n"}}}`))); err != nil {
		t.Errorf("the node agent setting a claim nonce: %v", err)
	}
}

// TestAgentPodShapePolicy: each pod the agent creates is shaped like the
// pool that owns it (its params: the SandboxPools of the pod's namespace).
func TestAgentPodShapePolicy(t *testing.T) {
	t.Parallel()
	admin := requireAPIServer(t)
	createsPoolPods(t, admin)
	installCRDs(t)
	const ns, empty = "podshape", "podshape-empty"
	createNamespace(t, admin, ns, nil)
	createNamespace(t, admin, empty, nil)
	objs := render(t, Release{Name: "ps", Namespace: "ps-system", Values: map[string]any{"agent": map[string]any{"enabled": true}}})
	createScoped(t, admin, objs, "ps-sandbox-injector-agent-pod-shape", ns+","+empty)
	for _, n := range []string{ns, empty} {
		for _, sa := range []string{"default", "admin"} {
			if err := admin.Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: n}}); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
		}
	}
	pc := impersonate(t, "system:admin", "", "system:masters")
	p := &v1alpha1.SandboxPool{
		ObjectMeta: metav1.ObjectMeta{Name: "py", Namespace: ns},
		Spec: v1alpha1.SandboxPoolSpec{Template: v1alpha1.SandboxTemplate{
			Image: "python:3.13",
			Env:   []corev1.EnvVar{{Name: "KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "api"}, Key: "key"}}}},
		}},
	}
	var created v1alpha1.SandboxPool
	eventually(t, "the SandboxPool CRD served", func() error {
		c := p.DeepCopy()
		if err := pc.Create(t.Context(), c); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return pc.Get(t.Context(), client.ObjectKeyFromObject(p), &created)
	})
	agent := impersonate(t, "system:serviceaccount:ps-system:ps-sandbox-injector-agent", "node-a", "system:masters")
	good := func() *corev1.Pod {
		pod := pool.WarmPod(&created, "node-a")
		pod.GenerateName, pod.Name = "", "warm"
		// No webhook here; the guard test's policy would refuse an opted-in pod.
		delete(pod.Annotations, v1alpha1.AnnotationInject)
		return pod
	}
	eventually(t, "the agent pod shape policy in force", func() error {
		pod := good()
		pod.Spec.Containers[0].Image = "evil:latest"
		return refusedSaying(agent.Create(t.Context(), pod, client.DryRunAll), "has one container, sandbox, of image python:3.13")
	})
	if err := agent.Create(t.Context(), good(), client.DryRunAll); err != nil {
		t.Errorf("the agent creating its pool's warm pod: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		change     func(*corev1.Pod)
	}{
		{"no owner", "controller owner reference", func(p *corev1.Pod) { p.OwnerReferences = nil }},
		{"an owner that the label does not name", "controller owner reference", func(p *corev1.Pod) { p.Labels[v1alpha1.LabelPool] = "other" }},
		{"another uid", "with another uid", func(p *corev1.Pod) { p.OwnerReferences[0].UID = "0000" }},
		{"another ServiceAccount", "runs as ServiceAccount default, not admin", func(p *corev1.Pod) { p.Spec.ServiceAccountName = "admin" }},
		{"a token the pool does not ask for", "does not ask for a ServiceAccount token", func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = nil }},
		{"a second container", "has one container", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "side", Image: "python:3.13"})
		}},
		{"another Secret in env", "reads only the Secrets its template env names", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "DB", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}})
		}},
		{"envFrom", "no envFrom", func(p *corev1.Pod) {
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}
		}},
		{"a Secret volume", "no Secret", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "db", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}})
		}},
		{"a hostPath volume", "no hostPath", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
		}},
		{"an init container of its own", "no init container but the runner's install", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "sandbox-runner-install", Image: "evil:latest"}}
		}},
	} {
		pod := good()
		tc.change(pod)
		if err := refusedSaying(agent.Create(t.Context(), pod, client.DryRunAll), tc.want); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// The pool's own Secret in env is fine (the good pod has it); a
	// namespace without pools refuses every pod of the agent.
	pod := good()
	pod.Namespace = empty
	if err := agent.Create(t.Context(), pod, client.DryRunAll); err == nil {
		t.Error("the agent created a pool pod in a namespace without pools")
	}
}

// TestWebhookNetworkPolicy: webhook.networkPolicy keeps one NetworkPolicy
// on the webhook pods (the Deployment's own pod labels), admitting the
// webhook port from apiServerFrom and the metrics port from metricsFrom,
// and nothing else; enabled without apiServerFrom is refused at render.
func TestWebhookNetworkPolicy(t *testing.T) {
	t.Parallel()
	if objs := render(t, Release{}); len(Find(objs, "NetworkPolicy")) != 0 {
		t.Errorf("the default renders a NetworkPolicy")
	}
	objs := render(t, Release{Values: map[string]any{"webhook": map[string]any{"networkPolicy": webhookNetworkPolicy}}})
	np := one[networkingv1.NetworkPolicy](t, objs, "NetworkPolicy")
	dep := one[appsv1.Deployment](t, objs, "Deployment")
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("pod selector %v (%v) does not select the webhook pods %v", np.Spec.PodSelector, err, dep.Spec.Template.Labels)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("policy types %v, want Ingress alone (the webhook connects out to the API server and runners)", np.Spec.PolicyTypes)
	}
	ports := map[string]bool{}
	for _, p := range dep.Spec.Template.Spec.Containers[0].Ports {
		ports[p.Name] = true
	}
	got := map[string]string{}
	for _, rule := range np.Spec.Ingress {
		if len(rule.Ports) != 1 || rule.Ports[0].Port == nil || !ports[rule.Ports[0].Port.StrVal] || len(rule.From) != 1 {
			t.Fatalf("ingress rule %+v, want one named container port from one peer", rule)
		}
		from, _ := json.Marshal(rule.From[0])
		got[rule.Ports[0].Port.StrVal] = string(from)
	}
	want := map[string]string{
		"webhook": `{"ipBlock":{"cidr":"192.0.2.10/32"}}`,
		"metrics": `{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ingress %v, want %v", got, want)
	}

	// No metrics scrapers named (or no metrics): the port admits no one.
	noScrape := map[string]any{"enabled": true, "apiServerFrom": webhookNetworkPolicy["apiServerFrom"]}
	np = one[networkingv1.NetworkPolicy](t, render(t, Release{Values: map[string]any{"webhook": map[string]any{"networkPolicy": noScrape}}}), "NetworkPolicy")
	if len(np.Spec.Ingress) != 1 || np.Spec.Ingress[0].Ports[0].Port.StrVal != "webhook" {
		t.Errorf("ingress %+v, want the webhook port alone", np.Spec.Ingress)
	}

	_, err = RenderRelease(t.Context(), requireHelm(t), Release{Values: map[string]any{"webhook": map[string]any{"networkPolicy": map[string]any{"enabled": true}}}})
	if err == nil || !strings.Contains(err.Error(), "webhook.networkPolicy.apiServerFrom") {
		t.Errorf("enabled without apiServerFrom: %v, want a refusal naming webhook.networkPolicy.apiServerFrom", err)
	}
}

// TestAgentNetworkPolicy: agent.networkPolicy keeps one NetworkPolicy on
// the agent pods (the DaemonSet's own pod labels) admitting only
// metricsFrom on the metrics port, and no ingress at all without it.
func TestAgentNetworkPolicy(t *testing.T) {
	t.Parallel()
	metricsFrom := webhookNetworkPolicy["metricsFrom"]
	objs := render(t, Release{Values: map[string]any{"agent": map[string]any{"networkPolicy": map[string]any{"enabled": true, "metricsFrom": metricsFrom}}}})
	np := one[networkingv1.NetworkPolicy](t, objs, "NetworkPolicy")
	ds := one[appsv1.DaemonSet](t, objs, "DaemonSet")
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("pod selector %v (%v) does not select the agent pods %v", np.Spec.PodSelector, err, ds.Spec.Template.Labels)
	}
	if dep := one[appsv1.Deployment](t, objs, "Deployment"); sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("pod selector %v also selects the webhook pods", np.Spec.PodSelector)
	}
	hasMetrics := false
	for _, p := range ds.Spec.Template.Spec.Containers[0].Ports {
		hasMetrics = hasMetrics || p.Name == "metrics"
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.StrVal != "metrics" || !hasMetrics ||
		len(np.Spec.Ingress[0].From) != 1 || np.Spec.Ingress[0].From[0].NamespaceSelector == nil {
		t.Errorf("ingress %+v, want the agent's metrics port from the monitoring namespace", np.Spec.Ingress)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("policy types %v, want Ingress alone", np.Spec.PolicyTypes)
	}

	closed := one[networkingv1.NetworkPolicy](t, render(t, Release{Values: map[string]any{"agent": map[string]any{"networkPolicy": map[string]any{"enabled": true}}}}), "NetworkPolicy")
	if len(closed.Spec.Ingress) != 0 || !slices.Equal(closed.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("without metricsFrom: ingress %+v, policy types %v, want no ingress at all", closed.Spec.Ingress, closed.Spec.PolicyTypes)
	}
	if off := render(t, Release{Values: map[string]any{"agent": map[string]any{"enabled": false, "networkPolicy": map[string]any{"enabled": true}}}}); len(Find(off, "NetworkPolicy")) != 0 {
		t.Errorf("agent.enabled=false still renders the agent's NetworkPolicy")
	}
}

// TestClaimSecretRefPolicy: a claim may name in spec.auth.secretRef only a
// Secret its creator may get, so that no one has the claim controller read
// a Secret for them; a claim giving tokenSHA256 needs no Secret at all.
// Tested as a user with the chart's claimant role and get on one Secret,
// against the real API server with the chart's policy.
func TestClaimSecretRefPolicy(t *testing.T) {
	t.Parallel()
	admin := requireAPIServer(t)
	installCRDs(t)
	const ns, user = "claimsecrets", "alice"
	createNamespace(t, admin, ns, nil)
	objs := render(t, Release{Name: "cs", Namespace: "cs-system", Values: map[string]any{}})
	createScoped(t, admin, objs, "cs-sandbox-injector-claim-secrets", ns)
	var claimant *unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == "ClusterRole" && u.GetName() == "cs-claimant" {
			claimant = u.DeepCopy()
		}
	}
	if claimant == nil {
		t.Fatal("the chart renders no cs-claimant ClusterRole")
	}
	for _, obj := range []client.Object{
		claimant,
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "own-secret", Namespace: ns}, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"mine"}, Verbs: []string{"get"},
		}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "claimant", Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cs-claimant"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "own-secret", Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "own-secret"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}},
	} {
		if err := admin.Create(t.Context(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
	alice := impersonate(t, user, "")
	claim := func(name string, auth v1alpha1.ClaimAuth) *v1alpha1.SandboxClaim {
		return &v1alpha1.SandboxClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.SandboxClaimSpec{PoolName: "python", Auth: auth}}
	}
	const refusal = "spec.auth.secretRef names Secret theirs, which alice may not get"
	eventually(t, "the claim Secret policy in force", func() error {
		return refusedSaying(alice.Create(t.Context(), claim("probe", v1alpha1.ClaimAuth{SecretRef: &v1alpha1.SecretReference{Name: "theirs"}}), client.DryRunAll), refusal)
	})
	if err := alice.Create(t.Context(), claim("own", v1alpha1.ClaimAuth{SecretRef: &v1alpha1.SecretReference{Name: "mine"}}), client.DryRunAll); err != nil {
		t.Errorf("a claim naming a Secret its creator may get: %v", err)
	}
	digest := strings.Repeat("ab", 32)
	if err := alice.Create(t.Context(), claim("digest", v1alpha1.ClaimAuth{TokenSHA256: digest}), client.DryRunAll); err != nil {
		t.Errorf("a claim giving tokenSHA256: %v", err)
	}
	// A cluster admin may get every Secret, so may name any.
	root := impersonate(t, "root", "", "system:masters")
	if err := root.Create(t.Context(), claim("admin", v1alpha1.ClaimAuth{SecretRef: &v1alpha1.SecretReference{Name: "theirs"}}), client.DryRunAll); err != nil {
		t.Errorf("a cluster admin's claim: %v", err)
	}
}
