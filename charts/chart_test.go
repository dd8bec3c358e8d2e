package charts

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"sandbox.io/injector/agent"
)

func TestLint(t *testing.T) {
	t.Parallel()
	helm := requireHelm(t)
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			if err := Lint(t.Context(), helm, Release{Namespace: vs.namespace, Values: vs.values}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRenderValueSets checks what must hold for every value set: each object
// is typed correctly, namespaced objects are in the release namespace, and
// the references between objects (Secret, Service, ServiceAccount, policy)
// resolve inside the rendering.
func TestRenderValueSets(t *testing.T) {
	t.Parallel()
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			ns := vs.namespace
			if ns == "" {
				ns = DefaultNamespace
			}
			objs := render(t, Release{Namespace: ns, Values: vs.values})
			clusterScoped := []string{"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
			seen := map[string]bool{}
			for _, o := range objs {
				key := o.GetKind() + "/" + o.GetName()
				if seen[key] {
					t.Errorf("%s rendered twice", key)
				}
				seen[key] = true
				switch {
				case slices.Contains(clusterScoped, o.GetKind()):
					if o.GetNamespace() != "" {
						t.Errorf("%s: cluster-scoped object has namespace %q", key, o.GetNamespace())
					}
				case o.GetAnnotations()["helm.sh/hook"] == "test" && (o.GetKind() == "Role" || o.GetKind() == "RoleBinding"):
					// The helm test's permission to dry-run pods where they are injected.
					if o.GetNamespace() != "default" {
						t.Errorf("%s: namespace %q, want tests.namespace (default)", key, o.GetNamespace())
					}
				case o.GetNamespace() != ns:
					t.Errorf("%s: namespace %q, want the release namespace %q", key, o.GetNamespace(), ns)
				}
				if o.GetLabels()["app.kubernetes.io/instance"] != DefaultReleaseName {
					t.Errorf("%s: missing the app.kubernetes.io/instance label", key)
				}
			}

			dep := one[appsv1.Deployment](t, objs, "Deployment")
			svc := one[corev1.Service](t, objs, "Service")
			mwc, err := MutatingWebhookConfiguration(objs)
			if err != nil {
				t.Fatal(err)
			}
			for _, wh := range mwc.Webhooks {
				if ref := wh.ClientConfig.Service; ref == nil || ref.Name != svc.Name || ref.Namespace != ns {
					t.Errorf("webhook %s: clientConfig.service %+v, want the Service %s/%s", wh.Name, ref, ns, svc.Name)
				}
			}
			if !selects(svc.Spec.Selector, dep.Spec.Template.Labels) {
				t.Errorf("Service selector %v does not select the Deployment's pods %v", svc.Spec.Selector, dep.Spec.Template.Labels)
			}
			// Every workload runs as a ServiceAccount the chart renders, and
			// every ClusterRoleBinding binds one of them.
			accounts := map[string]bool{}
			for _, u := range Find(objs, "ServiceAccount") {
				accounts[u.GetName()] = true
			}
			runAs := []string{dep.Spec.Template.Spec.ServiceAccountName}
			for _, u := range Find(objs, "DaemonSet") {
				var ds appsv1.DaemonSet
				if err := Into(u, &ds); err != nil {
					t.Fatal(err)
				}
				runAs = append(runAs, ds.Spec.Template.Spec.ServiceAccountName)
			}
			for _, name := range runAs {
				if !accounts[name] {
					t.Errorf("a workload runs as %q, which the chart does not render (it renders %v)", name, accounts)
				}
			}
			for _, b := range Find(objs, "ClusterRoleBinding") {
				var crb rbacv1.ClusterRoleBinding
				if err := Into(b, &crb); err != nil {
					t.Fatal(err)
				}
				if len(crb.Subjects) != 1 || crb.Subjects[0].Kind != "ServiceAccount" || !accounts[crb.Subjects[0].Name] || crb.Subjects[0].Namespace != ns {
					t.Errorf("ClusterRoleBinding %s subjects %v, want one of the chart's ServiceAccounts in %s", crb.Name, crb.Subjects, ns)
				}
			}
			servingSecret := ""
			for _, v := range dep.Spec.Template.Spec.Volumes {
				if v.Name == "serving-cert" && v.Secret != nil {
					servingSecret = v.Secret.SecretName
				}
			}
			// The serving Secret is filled by exactly one source.
			var filledBy []string
			for _, c := range Find(objs, "Certificate") {
				if name, _, _ := unstructured.NestedString(c.Object, "spec", "secretName"); name == servingSecret {
					filledBy = append(filledBy, "Certificate/"+c.GetName())
				}
			}
			for _, s := range Find(objs, "Secret") {
				if s.GetName() == servingSecret {
					filledBy = append(filledBy, "Secret/"+s.GetName())
				}
			}
			selfCerts := slices.Contains(dep.Spec.Template.Spec.Containers[0].Args, "--cert-mode=self")
			switch {
			case selfCerts && (servingSecret != "" || len(filledBy) != 0):
				t.Errorf("the webhook keeps its own certificates, yet mounts Secret %q filled by %v", servingSecret, filledBy)
			case !selfCerts && len(filledBy) != 1:
				t.Errorf("serving Secret %q is filled by %v, want exactly one source", servingSecret, filledBy)
			}
			// Every policy (the guard, the agent's node policy) has exactly
			// one binding that names it.
			policies, bindings := Find(objs, "ValidatingAdmissionPolicy"), Find(objs, "ValidatingAdmissionPolicyBinding")
			bound := map[string]int{}
			for _, b := range bindings {
				name, _, _ := unstructured.NestedString(b.Object, "spec", "policyName")
				bound[name]++
			}
			for _, p := range policies {
				if bound[p.GetName()] != 1 {
					t.Errorf("policy %s has %d bindings, want 1", p.GetName(), bound[p.GetName()])
				}
				delete(bound, p.GetName())
			}
			for name := range bound {
				t.Errorf("a binding names policy %q, which the chart does not render", name)
			}
		})
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestMutatingWebhookConfiguration pins the two webhooks field by field: the
// admission contract of DESIGN.md.
func TestMutatingWebhookConfiguration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		namespace     string
		values        map[string]any
		failurePolicy admissionregistrationv1.FailurePolicyType
		timeout       int32
		excluded      []string
	}{
		{
			name:          "defaults",
			namespace:     "sandbox-injector",
			failurePolicy: admissionregistrationv1.Fail,
			timeout:       5,
			excluded:      []string{"kube-system", "kube-public", "kube-node-lease", "sandbox-injector"},
		},
		{
			name:      "values",
			namespace: "platform",
			values: map[string]any{"webhook": map[string]any{
				"failurePolicy": "Ignore", "timeoutSeconds": 12,
				"excludedNamespaces": []any{"ci", "kube-system", "monitoring"},
			}},
			failurePolicy: admissionregistrationv1.Ignore,
			timeout:       12,
			excluded:      []string{"kube-system", "kube-public", "kube-node-lease", "platform", "ci", "monitoring"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objs := render(t, Release{Namespace: tc.namespace, Values: tc.values})
			mwc, err := MutatingWebhookConfiguration(objs)
			if err != nil {
				t.Fatal(err)
			}
			webhook := func(name, operator string, values []string, condition admissionregistrationv1.MatchCondition) admissionregistrationv1.MutatingWebhook {
				return admissionregistrationv1.MutatingWebhook{
					Name: name,
					ClientConfig: admissionregistrationv1.WebhookClientConfig{
						Service: &admissionregistrationv1.ServiceReference{
							Namespace: tc.namespace, Name: DefaultReleaseName,
							Path: ptr.To("/mutate-v1-pod"), Port: ptr.To[int32](443),
						},
					},
					Rules: []admissionregistrationv1.RuleWithOperations{{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule: admissionregistrationv1.Rule{
							APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
							Scope: ptr.To(admissionregistrationv1.NamespacedScope),
						},
					}},
					FailurePolicy: ptr.To(tc.failurePolicy),
					MatchPolicy:   ptr.To(admissionregistrationv1.Equivalent),
					NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "sandbox.io/inject", Operator: metav1.LabelSelectorOperator(operator), Values: values},
						{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: tc.excluded},
					}},
					ObjectSelector:          &metav1.LabelSelector{},
					SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
					TimeoutSeconds:          ptr.To(tc.timeout),
					AdmissionReviewVersions: []string{"v1"},
					ReinvocationPolicy:      ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
					MatchConditions:         []admissionregistrationv1.MatchCondition{condition},
				}
			}
			want := []admissionregistrationv1.MutatingWebhook{
				webhook("namespace.sandbox.io", "In", []string{"enabled"}, admissionregistrationv1.MatchCondition{
					Name:       "not-opted-out",
					Expression: `!has(object.metadata.annotations) || !('sandbox.io/inject' in object.metadata.annotations) || object.metadata.annotations['sandbox.io/inject'] != 'false'`,
				}),
				webhook("pod.sandbox.io", "NotIn", []string{"enabled", "disabled"}, admissionregistrationv1.MatchCondition{
					Name:       "opted-in-by-annotation",
					Expression: `has(object.metadata.annotations) && 'sandbox.io/inject' in object.metadata.annotations && object.metadata.annotations['sandbox.io/inject'] != 'false'`,
				}),
			}
			if diff := cmp.Diff(want, mwc.Webhooks); diff != "" {
				t.Errorf("webhooks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeployment(t *testing.T) {
	t.Parallel()
	objs := render(t, Release{Namespace: "sbx", APIVersions: []string{certManagerAPI}, Values: map[string]any{
		"runner": map[string]any{"image": map[string]any{"registry": "127.0.0.1:5000", "tag": "v9"}, "port": 7090, "tokenSecretName": "tok"},
		"webhook": map[string]any{
			"image":             map[string]any{"registry": "127.0.0.1:5000", "repository": "w", "tag": "v9"},
			"logLevel":          "debug",
			"entrypointTimeout": "3s",
		},
	}})
	dep := one[appsv1.Deployment](t, objs, "Deployment")
	if got := ptr.Deref(dep.Spec.Replicas, 0); got != 2 {
		t.Errorf("replicas = %d, want 2", got)
	}
	if ru := dep.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v, want maxUnavailable 0", ru)
	}
	pod := dep.Spec.Template.Spec
	// A stopping replica serves on until the API server has left it
	// (TestUpgradeFromPreviousRelease, e2e/inject, found admissions
	// refused during a helm upgrade without it).
	if got := ptr.Deref(pod.TerminationGracePeriodSeconds, 0); got != 130 {
		t.Errorf("terminationGracePeriodSeconds = %d, want 130 (the 100 s drain timeout and 30 s to finish)", got)
	}
	wantPodSC := &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To[int64](65532),
		RunAsGroup:     ptr.To[int64](65532),
		FSGroup:        ptr.To[int64](65532),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if diff := cmp.Diff(wantPodSC, pod.SecurityContext); diff != "" {
		t.Errorf("pod securityContext (-want +got):\n%s", diff)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	// The webhook drains itself after SIGTERM (--shutdown-delay,
	// --drain-timeout); a preStop sleep would only delay the drain.
	if c.Lifecycle != nil || !slices.Contains(c.Args, "--shutdown-delay=5s") || !slices.Contains(c.Args, "--drain-timeout=100s") {
		t.Errorf("webhook container lifecycle %+v, args %v: want no preStop, --shutdown-delay=5s and --drain-timeout=100s", c.Lifecycle, c.Args)
	}
	wantSC := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To[int64](65532),
		RunAsGroup:               ptr.To[int64](65532),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if diff := cmp.Diff(wantSC, c.SecurityContext); diff != "" {
		t.Errorf("container securityContext (-want +got):\n%s", diff)
	}
	if c.Image != "127.0.0.1:5000/w:v9" {
		t.Errorf("image = %q", c.Image)
	}
	wantArgs := []string{
		"--cert-mode=files",
		"--cert-dir=/tmp/k8s-webhook-server/serving-certs",
		"--port=9443",
		"--metrics-bind-address=:8080",
		"--health-probe-bind-address=:8081",
		"--runner-image=127.0.0.1:5000/sandbox-runner:v9",
		"--runner-port=7090",
		"--token-secret=tok",
		"--log-level=debug",
		"--entrypoint-timeout=3s",
		"--injection-method=auto",
		"--release-namespace=sbx",
		"--shutdown-delay=5s",
		"--drain-timeout=100s",
		"--claims=true",
		"--claim-key-secret=sandbox-injector-claim-key",
		"--claim-concurrency=64",
		"--claim-finished-ttl=1h",
		"--claim-relabel-on-take=true",
		"--claim-cold-timeout=3m",
		"--claim-unheld-key-grace=1m",
		"--leader-lease-duration=10s",
		// isolation_test.go checks the peers.
		`--runner-from=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"sbx"}},"podSelector":{"matchLabels":{"app.kubernetes.io/component":"webhook","app.kubernetes.io/instance":"sandbox-injector","app.kubernetes.io/name":"sandbox-injector"}}},{"podSelector":{}}]`,
		// The agent is on by default: the controller keeps its pull-secret Roles.
		"--agent-service-account=sbx/sandbox-injector-agent",
		"--excluded-namespaces=kube-system,kube-public,kube-node-lease,sbx",
	}
	if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if len(c.Command) != 0 {
		t.Errorf("command = %v, want the image's entrypoint", c.Command)
	}
	wantPorts := []corev1.ContainerPort{
		{Name: "webhook", ContainerPort: 9443, Protocol: corev1.ProtocolTCP},
		{Name: "health", ContainerPort: 8081, Protocol: corev1.ProtocolTCP},
		{Name: "metrics", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
	}
	if diff := cmp.Diff(wantPorts, c.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
	probe := func(p *corev1.Probe) string {
		if p == nil || p.HTTPGet == nil {
			return "none"
		}
		return p.HTTPGet.Path + " on " + p.HTTPGet.Port.String()
	}
	for name, tc := range map[string]struct {
		p    *corev1.Probe
		want string
	}{
		"startup":   {c.StartupProbe, "/readyz on health"},
		"readiness": {c.ReadinessProbe, "/readyz on health"},
		"liveness":  {c.LivenessProbe, "/healthz on health"},
	} {
		if got := probe(tc.p); got != tc.want {
			t.Errorf("%s probe = %s, want %s", name, got, tc.want)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	if m, ok := mounts["/tmp/k8s-webhook-server/serving-certs"]; !ok || !m.ReadOnly || m.Name != "serving-cert" {
		t.Errorf("cert-dir mount = %+v, want the serving-cert volume read-only", m)
	}
	if _, ok := mounts["/tmp"]; !ok {
		t.Errorf("no writable /tmp on the read-only root filesystem")
	}
	wantAffinity := &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{
				TopologyKey:   "kubernetes.io/hostname",
				LabelSelector: &metav1.LabelSelector{MatchLabels: dep.Spec.Selector.MatchLabels},
			},
		}},
	}}
	if diff := cmp.Diff(wantAffinity, pod.Affinity); diff != "" {
		t.Errorf("default affinity: soft anti-affinity across nodes (-want +got):\n%s", diff)
	}
}

func TestDeploymentOverrides(t *testing.T) {
	t.Parallel()
	affinity := map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
		"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "role", "operator": "In", "values": []any{"infra"}}}}},
	}}}
	objs := render(t, Release{Values: map[string]any{
		"webhook": map[string]any{
			"replicas": 3, "affinity": affinity, "priorityClassName": "high",
			"disableImageLookups": true, "insecureRegistries": []any{"127.0.0.1:5000", "localhost:5000"}, "registryAllowPrivate": true,
			"excludedNamespaces": []any{"ci"},
			"podLabels":          map[string]any{"team": "platform"},
			"podAnnotations":     map[string]any{"note": "kept"},
			"image":              map[string]any{"digest": "sha256:" + strings.Repeat("ab", 32)},
		},
		"metrics": map[string]any{"enabled": false},
	}})
	dep := one[appsv1.Deployment](t, objs, "Deployment")
	pod := dep.Spec.Template.Spec
	if ptr.Deref(dep.Spec.Replicas, 0) != 3 {
		t.Errorf("replicas = %v, want 3", dep.Spec.Replicas)
	}
	if pod.Affinity == nil || pod.Affinity.PodAntiAffinity != nil || pod.Affinity.NodeAffinity == nil {
		t.Errorf("affinity = %+v, want the given node affinity instead of the default", pod.Affinity)
	}
	if dep.Spec.Template.Labels["team"] != "platform" || dep.Spec.Template.Annotations["note"] != "kept" {
		t.Errorf("pod labels %v and annotations %v lack the extra ones", dep.Spec.Template.Labels, dep.Spec.Template.Annotations)
	}
	if pod.PriorityClassName != "high" {
		t.Errorf("priorityClassName = %q", pod.PriorityClassName)
	}
	c := pod.Containers[0]
	if want := "sandbox-webhook:0.1.0@sha256:" + strings.Repeat("ab", 32); c.Image != want {
		t.Errorf("image = %q, want %q", c.Image, want)
	}
	for _, want := range []string{
		"--metrics-bind-address=0",
		"--disable-image-lookups",
		"--insecure-registries=127.0.0.1:5000,localhost:5000",
		"--registry-allow-private",
		"--excluded-namespaces=kube-system,kube-public,kube-node-lease,sandbox-injector,ci",
	} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %v lack %s", c.Args, want)
		}
	}
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			t.Errorf("metrics port on the pod although metrics are off")
		}
	}
	svc := one[corev1.Service](t, objs, "Service")
	for _, p := range svc.Spec.Ports {
		if p.Name == "metrics" {
			t.Errorf("metrics port on the Service although metrics are off")
		}
	}
}

func TestPodDisruptionBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values map[string]any
		want   *intstr.IntOrString // nil: no PDB
	}{
		{name: "defaults", want: ptr.To(intstr.FromInt32(1))},
		{name: "percentage", values: map[string]any{"webhook": map[string]any{"podDisruptionBudget": map[string]any{"minAvailable": "50%"}}}, want: ptr.To(intstr.FromString("50%"))},
		{name: "single replica", values: map[string]any{"webhook": map[string]any{"replicas": 1}}},
		{name: "disabled", values: map[string]any{"webhook": map[string]any{"podDisruptionBudget": map[string]any{"enabled": false}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objs := render(t, Release{Values: tc.values})
			pdbs := Find(objs, "PodDisruptionBudget")
			if tc.want == nil {
				if len(pdbs) != 0 {
					t.Fatalf("rendered %d PodDisruptionBudgets, want none", len(pdbs))
				}
				return
			}
			pdb := one[policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget")
			dep := one[appsv1.Deployment](t, objs, "Deployment")
			if diff := cmp.Diff(tc.want, pdb.Spec.MinAvailable); diff != "" {
				t.Errorf("minAvailable (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(dep.Spec.Selector, pdb.Spec.Selector); diff != "" {
				t.Errorf("PDB selector differs from the Deployment's (-deployment +pdb):\n%s", diff)
			}
		})
	}
}

// TestRBAC pins the webhook's permissions and checks least-privilege rules
// that must hold whatever they become.
func TestRBAC(t *testing.T) {
	t.Parallel()
	objs := render(t, Release{Namespace: "sbx", Values: webhookOnly(nil), APIVersions: []string{certManagerAPI}})
	var rules []rbacv1.PolicyRule
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, u := range Find(objs, kind) {
			var r rbacv1.ClusterRole // Role has the same rules field
			if err := Into(u, &r); err != nil {
				t.Fatal(err)
			}
			for _, rule := range r.Rules {
				for _, field := range [][]string{rule.Verbs, rule.Resources, rule.APIGroups} {
					if slices.Contains(field, "*") {
						t.Errorf("%s %s: wildcard in rule %+v", kind, u.GetName(), rule)
					}
				}
				if len(rule.NonResourceURLs) > 0 || len(rule.ResourceNames) > 0 && kind == "ClusterRole" {
					t.Errorf("%s %s: unexpected rule %+v", kind, u.GetName(), rule)
				}
				for _, res := range rule.Resources {
					if res == "secrets" && (slices.Contains(rule.Verbs, "list") || slices.Contains(rule.Verbs, "watch")) {
						t.Errorf("%s %s: may list or watch secrets: %+v", kind, u.GetName(), rule)
					}
					if strings.Contains(res, "/") && res != "sandboxclaims/status" && res != "sandboxpools/status" {
						t.Errorf("%s %s: subresource access %+v", kind, u.GetName(), rule)
					}
				}
			}
			rules = append(rules, r.Rules...)
		}
	}
	want := []rbacv1.PolicyRule{
		// isolation.yaml: a NetworkPolicy per pool (claims.network.policies).
		{APIGroups: []string{"sandbox.io"}, Resources: []string{"sandboxpools"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
		// rbac.yaml, claims.enabled: the claim controller binds pool pods,
		// makes cold ones, ends claims and writes claim and pool status.
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "create", "update", "delete"}},
		{APIGroups: []string{"sandbox.io"}, Resources: []string{"sandboxclaims"}, Verbs: []string{"get", "list", "watch", "delete"}},
		{APIGroups: []string{"sandbox.io"}, Resources: []string{"sandboxpools"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"sandbox.io"}, Resources: []string{"sandboxclaims/status", "sandboxpools/status"}, Verbs: []string{"update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"secrets", "serviceaccounts"}, Verbs: []string{"get"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update", "patch"}},
		// The claim key Secret, created once in the release namespace.
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
	}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	role := one[rbacv1.Role](t, objs, "Role")
	if role.Namespace != "sbx" {
		t.Errorf("leases Role in namespace %q, want the release namespace", role.Namespace)
	}
}

func TestCertManagerSource(t *testing.T) {
	t.Parallel()
	// certManager.enabled auto, on a cluster that serves cert-manager's API.
	objs := render(t, Release{Namespace: "sbx", APIVersions: []string{certManagerAPI}})
	mwc, err := MutatingWebhookConfiguration(objs)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mwc.Annotations["cert-manager.io/inject-ca-from"], "sbx/sandbox-injector-serving"; got != want {
		t.Errorf("inject-ca-from = %q, want %q", got, want)
	}
	for _, wh := range mwc.Webhooks {
		if len(wh.ClientConfig.CABundle) != 0 {
			t.Errorf("webhook %s has a caBundle; cert-manager injects it", wh.Name)
		}
	}
	if n := len(Find(objs, "Secret")); n != 0 {
		t.Errorf("rendered %d Secrets, want none: cert-manager writes the serving Secret", n)
	}
	type issuer struct{ name, kind string }
	var issuers []issuer
	for _, u := range Find(objs, "Issuer") {
		spec, _, _ := unstructured.NestedMap(u.Object, "spec")
		for k := range spec {
			issuers = append(issuers, issuer{u.GetName(), k})
		}
	}
	wantIssuers := []issuer{{"sandbox-injector-selfsigned", "selfSigned"}, {"sandbox-injector-ca", "ca"}}
	if diff := cmp.Diff(wantIssuers, issuers, cmp.AllowUnexported(issuer{})); diff != "" {
		t.Errorf("issuers (-want +got):\n%s", diff)
	}
	certs := map[string]map[string]any{}
	for _, u := range Find(objs, "Certificate") {
		spec, _, _ := unstructured.NestedMap(u.Object, "spec")
		certs[u.GetName()] = spec
	}
	ca, serving := certs["sandbox-injector-ca"], certs["sandbox-injector-serving"]
	if ca == nil || serving == nil || len(certs) != 2 {
		t.Fatalf("certificates %v, want sandbox-injector-ca and sandbox-injector-serving", certs)
	}
	if ca["isCA"] != true || ca["issuerRef"].(map[string]any)["name"] != "sandbox-injector-selfsigned" || ca["secretName"] != "sandbox-injector-ca" {
		t.Errorf("CA certificate spec %v", ca)
	}
	if serving["issuerRef"].(map[string]any)["name"] != "sandbox-injector-ca" || serving["secretName"] != "sandbox-injector-serving-cert" {
		t.Errorf("serving certificate spec %v", serving)
	}
	wantDNS := []any{"sandbox-injector.sbx.svc", "sandbox-injector.sbx.svc.cluster.local"}
	if diff := cmp.Diff(wantDNS, serving["dnsNames"]); diff != "" {
		t.Errorf("serving dnsNames (-want +got):\n%s", diff)
	}
	if serving["duration"] != "2160h" || serving["renewBefore"] != "360h" || ca["duration"] != "43800h" {
		t.Errorf("durations: serving %v/%v, CA %v", serving["duration"], serving["renewBefore"], ca["duration"])
	}
}

// TestHelmGeneratedSource checks the certificates Helm generates when
// cert-manager is off: the Secret's CA is the caBundle of both webhooks, and
// it really signs a serving certificate for the Service's DNS names.
func TestHelmGeneratedSource(t *testing.T) {
	t.Parallel()
	objs := render(t, Release{Namespace: "sbx", Values: map[string]any{
		"certManager": map[string]any{"enabled": false}, "generatedCerts": map[string]any{"generator": "helm", "validityDays": 30},
	}})
	for _, kind := range []string{"Issuer", "Certificate"} {
		if n := len(Find(objs, kind)); n != 0 {
			t.Errorf("rendered %d %s objects with cert-manager off", n, kind)
		}
	}
	secret := one[corev1.Secret](t, objs, "Secret")
	if secret.Name != "sandbox-injector-serving-cert" || secret.Type != corev1.SecretTypeTLS {
		t.Fatalf("secret %s of type %s, want sandbox-injector-serving-cert of type %s", secret.Name, secret.Type, corev1.SecretTypeTLS)
	}
	mwc, err := MutatingWebhookConfiguration(objs)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mwc.Annotations["cert-manager.io/inject-ca-from"]; ok {
		t.Errorf("inject-ca-from annotation with cert-manager off")
	}
	for _, wh := range mwc.Webhooks {
		if string(wh.ClientConfig.CABundle) != string(secret.Data["ca.crt"]) {
			t.Errorf("webhook %s caBundle differs from the Secret's ca.crt", wh.Name)
		}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(secret.Data["ca.crt"]) {
		t.Fatalf("ca.crt holds no PEM certificate")
	}
	block, _ := pem.Decode(secret.Data["tls.crt"])
	if block == nil {
		t.Fatalf("tls.crt holds no PEM block")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parsing tls.crt: %v", err)
	}
	for _, name := range []string{"sandbox-injector.sbx.svc", "sandbox-injector.sbx.svc.cluster.local"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	if days := leaf.NotAfter.Sub(leaf.NotBefore).Hours() / 24; days < 29 || days > 31 {
		t.Errorf("serving certificate valid for %.1f days, want 30", days)
	}
	if keyBlock, _ := pem.Decode(secret.Data["tls.key"]); keyBlock == nil {
		t.Errorf("tls.key holds no PEM block")
	}
	dep := one[appsv1.Deployment](t, objs, "Deployment")
	if dep.Spec.Template.Annotations["checksum/serving-cert"] == "" {
		t.Errorf("no checksum/serving-cert annotation: a regenerated certificate would not restart the pods")
	}
	// The caBundle is base64 in YAML; make sure it was not encoded twice.
	raw, _, _ := unstructured.NestedSlice(Find(objs, "MutatingWebhookConfiguration")[0].Object, "webhooks")
	bundle, _, _ := unstructured.NestedString(raw[0].(map[string]any), "clientConfig", "caBundle")
	if decoded, err := base64.StdEncoding.DecodeString(bundle); err != nil || !strings.HasPrefix(string(decoded), "-----BEGIN CERTIFICATE-----") {
		t.Errorf("caBundle is not base64 of a PEM certificate (err %v)", err)
	}
}

func TestGuard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		values  map[string]any
		actions []admissionregistrationv1.ValidationAction // nil: no guard
	}{
		{name: "defaults", actions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}},
		{name: "warn and audit", values: map[string]any{"guard": map[string]any{"validationActions": []any{"Warn", "Audit"}}}, actions: []admissionregistrationv1.ValidationAction{"Warn", "Audit"}},
		{name: "disabled", values: map[string]any{"guard": map[string]any{"enabled": false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			all := render(t, Release{Namespace: "sbx", Values: webhookOnly(tc.values)})
			// The guard alone; the isolation policies (pool pod creators)
			// are tested in isolation_test.go.
			var objs []*unstructured.Unstructured
			for _, u := range all {
				if !strings.HasPrefix(u.GetKind(), "ValidatingAdmissionPolicy") || u.GetName() == "sandbox-injector-guard" {
					objs = append(objs, u)
				}
			}
			if tc.actions == nil {
				if n := len(Find(objs, "ValidatingAdmissionPolicy")) + len(Find(objs, "ValidatingAdmissionPolicyBinding")); n != 0 {
					t.Fatalf("rendered %d guard objects, want none", n)
				}
				return
			}
			policy := one[admissionregistrationv1.ValidatingAdmissionPolicy](t, objs, "ValidatingAdmissionPolicy")
			binding := one[admissionregistrationv1.ValidatingAdmissionPolicyBinding](t, objs, "ValidatingAdmissionPolicyBinding")
			if diff := cmp.Diff(tc.actions, binding.Spec.ValidationActions); diff != "" {
				t.Errorf("validationActions (-want +got):\n%s", diff)
			}
			if ptr.Deref(policy.Spec.FailurePolicy, "") != admissionregistrationv1.Fail {
				t.Errorf("failurePolicy = %v, want Fail", policy.Spec.FailurePolicy)
			}
			mwc, err := MutatingWebhookConfiguration(objs)
			if err != nil {
				t.Fatal(err)
			}
			var guardExcluded []string
			for _, e := range policy.Spec.MatchConstraints.NamespaceSelector.MatchExpressions {
				if e.Key == "kubernetes.io/metadata.name" {
					guardExcluded = e.Values
				}
			}
			if diff := cmp.Diff(mwc.Webhooks[0].NamespaceSelector.MatchExpressions[1].Values, guardExcluded); diff != "" {
				t.Errorf("the guard excludes other namespaces than the webhooks (-webhooks +guard):\n%s", diff)
			}
			if len(policy.Spec.Validations) != 1 || !strings.Contains(policy.Spec.Validations[0].Message, "webhook did not run") {
				t.Errorf("validations %+v: want one, whose message says the webhook did not run", policy.Spec.Validations)
			}
		})
	}
}

// TestSchemaRejects checks that values.schema.json turns a wrong value into
// an install error instead of a silently ignored setting.
func TestSchemaRejects(t *testing.T) {
	t.Parallel()
	helm := requireHelm(t)
	tests := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{name: "unknown top-level key", values: map[string]any{"webhooks": map[string]any{}}, want: "additional properties 'webhooks' not allowed"},
		{name: "misspelled nested key", values: map[string]any{"webhook": map[string]any{"failurPolicy": "Fail"}}, want: "additional properties 'failurPolicy' not allowed"},
		{name: "unknown deep key", values: map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"scrapeInterval": "1m"}}}, want: "additional properties 'scrapeInterval' not allowed"},
		{name: "string for integer", values: map[string]any{"webhook": map[string]any{"replicas": "two"}}, want: "/webhook/replicas"},
		{name: "string for boolean", values: map[string]any{"certManager": map[string]any{"enabled": "yes"}}, want: "/certManager/enabled"},
		{name: "failure policy outside the enum", values: map[string]any{"webhook": map[string]any{"failurePolicy": "Maybe"}}, want: "/webhook/failurePolicy"},
		{name: "timeout over 30 s", values: map[string]any{"webhook": map[string]any{"timeoutSeconds": 31}}, want: "/webhook/timeoutSeconds"},
		{name: "malformed duration", values: map[string]any{"webhook": map[string]any{"entrypointTimeout": "2 seconds"}}, want: "/webhook/entrypointTimeout"},
		{name: "port out of range", values: map[string]any{"runner": map[string]any{"port": 70000}}, want: "/runner/port"},
		{name: "agent socket not absolute", values: map[string]any{"agent": map[string]any{"criSocket": "run/containerd.sock"}}, want: "/agent/criSocket"},
		{name: "unknown guard action", values: map[string]any{"guard": map[string]any{"validationActions": []any{"Block"}}}, want: "/guard/validationActions"},
		{name: "negative duration", values: map[string]any{"claims": map[string]any{"unheldKeyGrace": "-1s"}}, want: "/claims/unheldKeyGrace"},
		{name: "number for duration", values: map[string]any{"agent": map[string]any{"pools": map[string]any{"stuckAfter": 5}}}, want: "/agent/pools/stuckAfter"},
		{name: "refill delay over the agent's 10s", values: map[string]any{"agent": map[string]any{"pools": map[string]any{"refillDelay": "1m"}}}, want: "/agent/pools/refillDelay"},
		{name: "refill delay 10.5s", values: map[string]any{"agent": map[string]any{"pools": map[string]any{"refillDelay": "10.5s"}}}, want: "/agent/pools/refillDelay"},
		{name: "stuck after under the agent's 1m", values: map[string]any{"agent": map[string]any{"pools": map[string]any{"stuckAfter": "59s"}}}, want: "/agent/pools/stuckAfter"},
		{name: "stuck after in ms", values: map[string]any{"agent": map[string]any{"pools": map[string]any{"stuckAfter": "500ms"}}}, want: "/agent/pools/stuckAfter"},
		{name: "stuck after half a minute", values: map[string]any{"agent": map[string]any{"pools": map[string]any{"stuckAfter": "0.5m"}}}, want: "/agent/pools/stuckAfter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Render(t.Context(), helm, tc.values)
			if err == nil {
				t.Fatalf("rendered without error; want the schema to reject %v", tc.values)
			}
			if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention the schema and %q", err, tc.want)
			}
		})
	}
}

// TestZeroDurations: the durations whose 0 means "never" take 0 as a
// number too, as `--set claims.unheldKeyGrace=0` gives it, and pass it on.
func TestZeroDurations(t *testing.T) {
	t.Parallel()
	helm := requireHelm(t)
	for _, zero := range []any{0, "0"} {
		objs, err := Render(t.Context(), helm, map[string]any{
			"claims": map[string]any{"unheldKeyGrace": zero},
			"agent":  map[string]any{"enabled": true, "pools": map[string]any{"enabled": true, "stuckAfter": zero, "refillDelay": zero}},
		})
		if err != nil {
			t.Fatalf("%#v: %v", zero, err)
		}
		var args []string
		for _, o := range objs {
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				a, _, _ := unstructured.NestedStringSlice(c.(map[string]any), "args")
				args = append(args, a...)
			}
		}
		for _, want := range []string{"--claim-unheld-key-grace=0", "--pool-stuck-after=0", "--pool-refill-delay=0"} {
			if !slices.Contains(args, want) {
				t.Errorf("%#v: no %s among the containers' args %q", zero, want, args)
			}
		}
	}
}

// TestStuckAfterAsTheAgentTakesIt: agent.pools.stuckAfter passes the schema
// exactly when the agent's --pool-stuck-after takes it (a Go duration, 0 or
// at least 1m), so that a value the agent would refuse at start, stopping
// every node's agent, fails the install instead.
func TestStuckAfterAsTheAgentTakesIt(t *testing.T) {
	t.Parallel()
	helm := requireHelm(t)
	// The agent's flag is a Go duration (flag.Duration), checked by the
	// agent's own rule.
	agentTakes := func(v string) bool {
		d, err := time.ParseDuration(v)
		return err == nil && agent.CheckStuckAfter(d) == nil
	}
	for _, v := range []string{"0", "0s", "1m", "90s", "60s", "10m0s", "1h30m", "1h0m0s", "1.5m", "2h",
		"59s", "30s", "500ms", "0.5m", "-1m", "10", "1d"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			objs, err := Render(t.Context(), helm, map[string]any{"agent": map[string]any{"enabled": true, "pools": map[string]any{"enabled": true, "stuckAfter": v}}})
			if !agentTakes(v) {
				if err == nil || !strings.Contains(err.Error(), "/agent/pools/stuckAfter") {
					t.Fatalf("the agent refuses --pool-stuck-after=%s, and the install gave %v; want the schema to refuse it", v, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("the agent takes --pool-stuck-after=%s, and the install failed: %v", v, err)
			}
			var args []string
			for _, o := range Find(objs, "DaemonSet") {
				containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				for _, c := range containers {
					a, _, _ := unstructured.NestedStringSlice(c.(map[string]any), "args")
					args = append(args, a...)
				}
			}
			if !slices.Contains(args, "--pool-stuck-after="+v) {
				t.Errorf("no --pool-stuck-after=%s among the DaemonSets' args %q", v, args)
			}
		})
	}
}

func TestServiceMonitor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values map[string]any
		want   bool
	}{
		{name: "defaults"},
		{name: "enabled", values: map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true, "interval": "30s", "labels": map[string]any{"release": "prom"}}}}, want: true},
		{name: "enabled but metrics off", values: map[string]any{"metrics": map[string]any{"enabled": false, "serviceMonitor": map[string]any{"enabled": true}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objs := render(t, Release{Values: tc.values})
			sms := Find(objs, "ServiceMonitor")
			if !tc.want {
				if len(sms) != 0 {
					t.Fatalf("rendered %d ServiceMonitors, want none", len(sms))
				}
				return
			}
			if len(sms) != 1 {
				t.Fatalf("rendered %d ServiceMonitors, want 1", len(sms))
			}
			sm := sms[0]
			if sm.GetLabels()["release"] != "prom" {
				t.Errorf("labels %v lack release=prom", sm.GetLabels())
			}
			endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			want := []any{map[string]any{"port": "metrics", "path": "/metrics", "interval": "30s"}}
			if diff := cmp.Diff(want, endpoints); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
			selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			svc := one[corev1.Service](t, objs, "Service")
			if !selects(selector, svc.Labels) {
				t.Errorf("ServiceMonitor selector %v does not select the Service (labels %v)", selector, svc.Labels)
			}
			hasMetricsPort := false
			for _, p := range svc.Spec.Ports {
				hasMetricsPort = hasMetricsPort || p.Name == "metrics"
			}
			if !hasMetricsPort {
				t.Errorf("the Service has no metrics port for the ServiceMonitor")
			}
		})
	}
}

// TestWebhookGeneratedSource checks the third certificate source: the
// webhook keeps its own certificates (certs/), so the chart renders no
// certificate objects, mounts no Secret, and grants exactly the extra
// permissions the rotator needs, by name.
func TestWebhookGeneratedSource(t *testing.T) {
	t.Parallel()
	objs := render(t, Release{Namespace: "sbx", Values: webhookOnly(map[string]any{
		"certManager":    map[string]any{"enabled": false},
		"generatedCerts": map[string]any{"generator": "webhook", "caLifetime": "8760h", "certLifetime": "720h", "caOverlap": "2h"},
	})})
	for _, kind := range []string{"Issuer", "Certificate", "Secret"} {
		if n := len(Find(objs, kind)); n != 0 {
			t.Errorf("rendered %d %s objects; the webhook makes its own certificates", n, kind)
		}
	}
	mwc, err := MutatingWebhookConfiguration(objs)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mwc.Annotations["cert-manager.io/inject-ca-from"]; ok {
		t.Errorf("inject-ca-from annotation without cert-manager")
	}
	for _, wh := range mwc.Webhooks {
		if len(wh.ClientConfig.CABundle) != 0 {
			t.Errorf("webhook %s has a caBundle; the webhook writes it", wh.Name)
		}
	}
	dep := one[appsv1.Deployment](t, objs, "Deployment")
	c := dep.Spec.Template.Spec.Containers[0]
	for _, want := range []string{
		"--cert-mode=self",
		"--cert-secret=sandbox-injector-serving-cert",
		"--webhook-config-name=" + mwc.Name,
		"--service-name=" + one[corev1.Service](t, objs, "Service").Name,
		"--ca-lifetime=8760h",
		"--cert-lifetime=720h",
		"--ca-overlap=2h",
	} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %v lack %s", c.Args, want)
		}
	}
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--cert-dir") {
			t.Errorf("args carry %s in self mode", a)
		}
	}
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			t.Errorf("volume %s mounts Secret %s; the webhook reads its Secret through the API", v.Name, v.Secret.SecretName)
		}
	}
	var cr rbacv1.ClusterRole
	for _, u := range Find(objs, "ClusterRole") {
		if u.GetName() == mwc.Name {
			if err := Into(u, &cr); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(cr.Rules) == 0 {
		t.Fatalf("no ClusterRole %s", mwc.Name)
	}
	wantCluster := rbacv1.PolicyRule{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, ResourceNames: []string{mwc.Name}, Verbs: []string{"get", "patch"}}
	if diff := cmp.Diff(wantCluster, cr.Rules[len(cr.Rules)-1]); diff != "" {
		t.Errorf("ClusterRole's webhook configuration rule (-want +got):\n%s", diff)
	}
	role := one[rbacv1.Role](t, objs, "Role")
	wantRole := []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"sandbox-injector-serving-cert"}, Verbs: []string{"update"}},
	}
	if diff := cmp.Diff(wantRole, role.Rules); diff != "" {
		t.Errorf("Role rules (-want +got):\n%s", diff)
	}
}

func TestAgentDaemonSet(t *testing.T) {
	t.Parallel()
	if objs := render(t, Release{Values: map[string]any{"agent": map[string]any{"enabled": false}}}); len(Find(objs, "DaemonSet")) != 0 {
		t.Error("the agent is rendered while agent.enabled is false")
	}
	objs := render(t, Release{Namespace: "sbx", Values: map[string]any{"agent": map[string]any{
		"enabled": true, "criSocket": "/run/k3s/containerd.sock", "labelInterval": "30s",
		"image": map[string]any{"registry": "127.0.0.1:5000", "tag": "v9"},
	}}})
	ds := one[appsv1.DaemonSet](t, objs, "DaemonSet")
	c := ds.Spec.Template.Spec.Containers[0]
	if c.Image != "127.0.0.1:5000/sandbox-agent:v9" {
		t.Errorf("image %q", c.Image)
	}
	if diff := cmp.Diff([]string{"--cri-socket=/host/cri.sock", "--label-interval=30s", "--log-level=info",
		"--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"}, c.Args[:5]); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if len(c.Env) < 1 || c.Env[0].Name != "SANDBOX_NODE_NAME" || c.Env[0].ValueFrom == nil ||
		c.Env[0].ValueFrom.FieldRef == nil || c.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("env %+v, want SANDBOX_NODE_NAME from spec.nodeName", c.Env)
	}
	vols := ds.Spec.Template.Spec.Volumes
	if len(vols) < 1 || vols[0].HostPath == nil || vols[0].HostPath.Path != "/run/k3s/containerd.sock" ||
		vols[0].HostPath.Type == nil || *vols[0].HostPath.Type != corev1.HostPathSocket {
		t.Errorf("volumes %+v, want the CRI socket first, as a hostPath of type Socket", vols)
	}
	if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 {
		t.Errorf("agent security context %+v: root for the socket, but nothing more", sc)
	}
	var agentRules []rbacv1.PolicyRule
	for _, u := range Find(objs, "ClusterRole") {
		if strings.HasSuffix(u.GetName(), "-agent") {
			var cr rbacv1.ClusterRole
			if err := Into(u, &cr); err != nil {
				t.Fatal(err)
			}
			agentRules = cr.Rules
		}
	}
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		// The pre-puller (charts/prepull_test.go checks the rest).
		{APIGroups: []string{"sandbox.io"}, Resources: []string{"sandboxpools"}, Verbs: []string{"get", "list", "watch"}},
		// No Secret: pull secrets by name, in their namespaces (isolation_test.go).
	}
	if diff := cmp.Diff(want, agentRules); diff != "" {
		t.Errorf("agent rules (-want +got):\n%s", diff)
	}
}
