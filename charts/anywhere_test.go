package charts

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestCertManagerChoice renders certManager.enabled auto, true and false,
// each on a cluster with and without cert-manager's API: auto follows the
// API, true and false force it, and without cert-manager the webhook makes
// its own certificates.
func TestCertManagerChoice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		enabled any // nil: the default
		api     bool
		want    string // cert-manager or webhook
	}{
		{name: "default without cert-manager", want: "webhook"},
		{name: "default with cert-manager", api: true, want: "cert-manager"},
		{name: "auto without cert-manager", enabled: "auto", want: "webhook"},
		{name: "auto with cert-manager", enabled: "auto", api: true, want: "cert-manager"},
		{name: "true without cert-manager", enabled: true, want: "cert-manager"},
		{name: "true with cert-manager", enabled: true, api: true, want: "cert-manager"},
		{name: "false without cert-manager", enabled: false, want: "webhook"},
		{name: "false with cert-manager", enabled: false, api: true, want: "webhook"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Release{Values: webhookOnly(nil)}
			if tc.enabled != nil {
				r.Values["certManager"] = map[string]any{"enabled": tc.enabled}
			}
			if tc.api {
				r.APIVersions = []string{certManagerAPI}
			}
			objs := render(t, r)
			dep := one[appsv1.Deployment](t, objs, "Deployment")
			args := dep.Spec.Template.Spec.Containers[0].Args
			issuers := len(Find(objs, "Issuer")) + len(Find(objs, "Certificate"))
			mwc, err := MutatingWebhookConfiguration(objs)
			if err != nil {
				t.Fatal(err)
			}
			_, injected := mwc.Annotations["cert-manager.io/inject-ca-from"]
			switch tc.want {
			case "cert-manager":
				if issuers != 4 || !injected || !slices.Contains(args, "--cert-mode=files") {
					t.Errorf("want cert-manager: %d Issuers and Certificates, inject-ca-from %v, args %v", issuers, injected, args)
				}
			case "webhook":
				if issuers != 0 || injected || !slices.Contains(args, "--cert-mode=self") {
					t.Errorf("want the webhook's own certificates: %d Issuers and Certificates, inject-ca-from %v, args %v", issuers, injected, args)
				}
			}
		})
	}
}

// TestSchemaCertManagerEnabled: only true, false and "auto".
func TestSchemaCertManagerEnabled(t *testing.T) {
	t.Parallel()
	helm := requireHelm(t)
	_, err := RenderRelease(t.Context(), helm, Release{Values: map[string]any{"certManager": map[string]any{"enabled": "yes"}}})
	if err == nil || !strings.Contains(err.Error(), "/certManager/enabled") {
		t.Errorf("certManager.enabled yes: error %v, want the schema to name the value", err)
	}
}

// helmDryRun runs `helm install --dry-run=server` of the chart against the
// API server of kubeconfig (lookups and the API discovery are real) and
// returns its output (manifests and NOTES), or the error with helm's message.
func helmDryRun(t *testing.T, kubeconfig, ns string, set ...string) (string, error) {
	t.Helper()
	helm := requireHelm(t)
	chart, err := ChartDir()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"install", "dry", chart, "--dry-run=server", "--namespace", ns}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(t.Context(), helm, args...)
	dir := t.TempDir()
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "HELM_CACHE_HOME="+dir, "HELM_CONFIG_HOME="+dir, "HELM_DATA_HOME="+dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

// notes returns the NOTES part of helm install output.
func notes(out string) string {
	if _, after, ok := strings.Cut(out, "\nNOTES:\n"); ok {
		return after
	}
	return ""
}

// TestNotes: the NOTES name the certificate source and why it was chosen,
// and warn when a component NetworkPolicy would refuse the scrapes of the
// monitors the chart creates. Rendered by helm against a real API server,
// which serves cert-manager's API (its CRDs), so "auto" finds it.
func TestNotes(t *testing.T) {
	t.Parallel()
	requireHelm(t)
	c := requireAPIServer(t)
	kubeconfig := apiServerKubeconfig(t)
	const ns = "notes"
	createNamespace(t, c, ns, nil)
	const (
		webhookWarning = "Warning: webhook.networkPolicy is on and webhook.networkPolicy.metricsFrom names no scraper"
		agentWarning   = "Warning: agent.networkPolicy is on and agent.networkPolicy.metricsFrom names no scraper"
		scraper        = `.namespaceSelector.matchLabels.kubernetes\.io/metadata\.name=monitoring`
	)
	webhookPolicy := []string{"webhook.networkPolicy.enabled=true", "webhook.networkPolicy.apiServerFrom[0].ipBlock.cidr=10.0.0.1/32"}
	tests := []struct {
		name          string
		set           []string
		want, notWant []string
	}{
		{name: "auto", want: []string{"Certificates: cert-manager (its API was found, certManager.enabled auto)."}},
		{name: "off", set: []string{"certManager.enabled=false"}, want: []string{"Certificates: self-managed by the webhook (certManager.enabled false)."}},
		{name: "helm", set: []string{"certManager.enabled=false", "generatedCerts.generator=helm"},
			want: []string{"Certificates: generated by Helm (certManager.enabled false, generatedCerts.generator helm),"}},
		{name: "policies without scrapers", set: append([]string{"agent.networkPolicy.enabled=true", "metrics.serviceMonitor.enabled=true"}, webhookPolicy...),
			want: []string{webhookWarning, agentWarning}},
		{name: "policies with scrapers", set: append([]string{"agent.networkPolicy.enabled=true", "metrics.serviceMonitor.enabled=true",
			"webhook.networkPolicy.metricsFrom[0]" + scraper, "agent.networkPolicy.metricsFrom[0]" + scraper}, webhookPolicy...),
			notWant: []string{webhookWarning, agentWarning}},
		{name: "policies without monitors", set: append([]string{"agent.networkPolicy.enabled=true"}, webhookPolicy...),
			notWant: []string{webhookWarning, agentWarning}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := helmDryRun(t, kubeconfig, ns, tc.set...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			n := notes(out)
			for _, want := range append(tc.want, "helm test dry -n "+ns, `Pod Security level "privileged"`) {
				if !strings.Contains(n, want) {
					t.Errorf("NOTES lack %q:\n%s", want, n)
				}
			}
			for _, bad := range tc.notWant {
				if strings.Contains(n, bad) {
					t.Errorf("NOTES say %q:\n%s", bad, n)
				}
			}
		})
	}
}

// TestAgentScheduling: the agent takes the webhook's scheduling values, and
// both take extraArgs and extraEnv after their own.
func TestAgentScheduling(t *testing.T) {
	t.Parallel()
	affinity := map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
		"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "kubernetes.io/arch", "operator": "In", "values": []any{"arm64"}}}}},
	}}}
	env := []any{map[string]any{"name": "GODEBUG", "value": "http2debug=1"}}
	objs := render(t, Release{Values: map[string]any{
		"agent": map[string]any{
			"affinity": affinity, "nodeSelector": map[string]any{"sandbox.io/pool-node": "true"},
			"tolerations":       []any{map[string]any{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}},
			"priorityClassName": "system-node-critical",
			"podAnnotations":    map[string]any{"team.sandbox.io/owner": "platform"},
			"podLabels":         map[string]any{"team": "platform"},
			"extraArgs":         []any{"--log-level=debug"},
			"extraEnv":          env,
		},
		"webhook": map[string]any{"extraArgs": []any{"--cert-extra-sans=webhook.sandbox.test"}, "extraEnv": env},
	}})
	ds := one[appsv1.DaemonSet](t, objs, "DaemonSet")
	spec := ds.Spec.Template.Spec
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.NodeSelector["sandbox.io/pool-node"] != "true" ||
		len(spec.Tolerations) != 1 || spec.Tolerations[0].Key != "sandbox" || spec.PriorityClassName != "system-node-critical" {
		t.Errorf("agent scheduling: affinity %+v, nodeSelector %v, tolerations %+v, priority %q", spec.Affinity, spec.NodeSelector, spec.Tolerations, spec.PriorityClassName)
	}
	if ds.Spec.Template.Annotations["team.sandbox.io/owner"] != "platform" || ds.Spec.Template.Labels["team"] != "platform" {
		t.Errorf("agent pod metadata %+v", ds.Spec.Template.ObjectMeta)
	}
	if !selects(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels) {
		t.Errorf("the DaemonSet's selector no longer selects its pods")
	}
	c := spec.Containers[0]
	if c.Args[len(c.Args)-1] != "--log-level=debug" {
		t.Errorf("agent args end with %q, want the extra argument last", c.Args[len(c.Args)-1])
	}
	if e := c.Env[len(c.Env)-1]; e.Name != "GODEBUG" || e.Value != "http2debug=1" || c.Env[0].Name != "SANDBOX_NODE_NAME" {
		t.Errorf("agent env %+v, want the chart's, then the extra one", c.Env)
	}
	w := one[appsv1.Deployment](t, objs, "Deployment").Spec.Template.Spec.Containers[0]
	if w.Args[len(w.Args)-1] != "--cert-extra-sans=webhook.sandbox.test" {
		t.Errorf("webhook args end with %q", w.Args[len(w.Args)-1])
	}
	if len(w.Env) != 1 || w.Env[0].Name != "GODEBUG" {
		t.Errorf("webhook env %+v", w.Env)
	}
}

// TestAgentDefault: the node agent is part of the default install, and a
// value leaves it out.
func TestAgentDefault(t *testing.T) {
	t.Parallel()
	if n := len(Find(render(t, Release{}), "DaemonSet")); n != 1 {
		t.Errorf("default install renders %d DaemonSets, want the agent", n)
	}
	objs := render(t, Release{Values: map[string]any{"agent": map[string]any{"enabled": false}}})
	for _, o := range objs {
		if o.GetLabels()["app.kubernetes.io/component"] == "agent" {
			t.Errorf("agent.enabled false still renders %s %s", o.GetKind(), o.GetName())
		}
	}
}

// TestUserRoles checks the roles for the users of sandboxes: read access
// aggregated into view (and so edit and admin), write access into edit and
// admin, and the claimant role of the claims contract, exactly.
func TestUserRoles(t *testing.T) {
	t.Parallel()
	objs := render(t, Release{Name: "sbx", Values: map[string]any{"agent": map[string]any{"enabled": false}}})
	roles := map[string]rbacv1.ClusterRole{}
	for _, u := range Find(objs, "ClusterRole") {
		var cr rbacv1.ClusterRole
		if err := Into(u, &cr); err != nil {
			t.Fatal(err)
		}
		roles[cr.Name] = cr
	}
	aggregated := func(cr rbacv1.ClusterRole) []string {
		var to []string
		for _, r := range []string{"view", "edit", "admin"} {
			if cr.Labels["rbac.authorization.k8s.io/aggregate-to-"+r] == "true" {
				to = append(to, r)
			}
		}
		return to
	}
	sandbox := func(resources []string, verbs ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: []string{"sandbox.io"}, Resources: resources, Verbs: verbs}
	}
	tests := []struct {
		name       string
		aggregated []string
		rules      []rbacv1.PolicyRule
	}{
		{
			name: "sbx-sandbox-injector-view", aggregated: []string{"view", "edit", "admin"},
			rules: []rbacv1.PolicyRule{sandbox([]string{"sandboxpools", "sandboxpools/status", "sandboxclaims", "sandboxclaims/status"}, "get", "list", "watch")},
		},
		{
			name: "sbx-sandbox-injector-edit", aggregated: []string{"edit", "admin"},
			rules: []rbacv1.PolicyRule{sandbox([]string{"sandboxpools", "sandboxclaims"}, "create", "update", "patch", "delete", "deletecollection")},
		},
		{
			name: "sbx-claimant",
			rules: []rbacv1.PolicyRule{
				sandbox([]string{"sandboxclaims"}, "create", "get", "list", "watch", "update", "patch", "delete"),
				sandbox([]string{"sandboxpools"}, "get", "list", "watch"),
				{APIGroups: []string{""}, Resources: []string{"pods/proxy"}, Verbs: []string{"get", "create"}},
			},
		},
	}
	for _, tc := range tests {
		cr, ok := roles[tc.name]
		if !ok {
			t.Errorf("no ClusterRole %s (rendered %v)", tc.name, slices.Sorted(maps.Keys(roles)))
			continue
		}
		if diff := cmp.Diff(tc.aggregated, aggregated(cr)); diff != "" {
			t.Errorf("%s aggregated to (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.rules, cr.Rules); diff != "" {
			t.Errorf("%s rules (-want +got):\n%s", tc.name, diff)
		}
	}

	off := render(t, Release{Name: "sbx", Values: map[string]any{"rbac": map[string]any{"aggregateToDefaultRoles": false, "claimantRole": false}}})
	for _, u := range Find(off, "ClusterRole") {
		if len(aggregated(rbacv1.ClusterRole{ObjectMeta: metaOf(u)})) > 0 || u.GetName() == "sbx-claimant" {
			t.Errorf("rbac values off still render ClusterRole %s", u.GetName())
		}
	}
}

func metaOf(u *unstructured.Unstructured) (m metav1.ObjectMeta) {
	m.Name, m.Labels = u.GetName(), u.GetLabels()
	return m
}

// TestHelmTestHook: the test pod runs the webhook image's selftest against
// tests.namespace, with a Role there that allows creating pods and nothing
// else, all as helm test hooks.
func TestHelmTestHook(t *testing.T) {
	t.Parallel()
	objs := render(t, Release{Namespace: "sbx", Values: map[string]any{
		"webhook": map[string]any{"image": map[string]any{"registry": "127.0.0.1:5000", "tag": "v9"}},
		"tests":   map[string]any{"namespace": "team-a"},
	}})
	var hooks []string
	for _, o := range objs {
		if o.GetAnnotations()["helm.sh/hook"] == "test" {
			hooks = append(hooks, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
		}
	}
	want := []string{
		"ServiceAccount sbx/sandbox-injector-test", "Role team-a/sandbox-injector-test",
		"RoleBinding team-a/sandbox-injector-test", "Pod sbx/sandbox-injector-test",
	}
	if diff := cmp.Diff(want, hooks); diff != "" {
		t.Errorf("test hooks (-want +got):\n%s", diff)
	}
	pod := one[corev1.Pod](t, objs, "Pod")
	c := pod.Spec.Containers[0]
	if diff := cmp.Diff([]string{"selftest", "--namespace=team-a", "--image=127.0.0.1:5000/sandbox-webhook:v9"}, c.Args); diff != "" {
		t.Errorf("test pod args (-want +got):\n%s", diff)
	}
	if c.Image != "127.0.0.1:5000/sandbox-webhook:v9" || pod.Spec.ServiceAccountName != "sandbox-injector-test" || pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("test pod image %q, account %q, restart policy %q", c.Image, pod.Spec.ServiceAccountName, pod.Spec.RestartPolicy)
	}
	var role rbacv1.Role
	for _, u := range Find(objs, "Role") {
		if u.GetNamespace() == "team-a" {
			if err := Into(u, &role); err != nil {
				t.Fatal(err)
			}
		}
	}
	if diff := cmp.Diff([]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}}}, role.Rules); diff != "" {
		t.Errorf("test Role rules (-want +got):\n%s", diff)
	}

	if objs := render(t, Release{Values: map[string]any{"tests": map[string]any{"enabled": false}}}); len(Find(objs, "Pod")) != 0 {
		t.Errorf("tests.enabled false still renders the test pod")
	}
}

// TestMonitoring renders the PodMonitor, the PrometheusRule and the Grafana
// dashboard, each behind its value.
func TestMonitoring(t *testing.T) {
	t.Parallel()
	kinds := func(objs []*unstructured.Unstructured) (got []string) {
		for _, o := range objs {
			if o.GetKind() == "PodMonitor" || o.GetKind() == "PrometheusRule" || (o.GetKind() == "ConfigMap" && strings.HasSuffix(o.GetName(), "-dashboard")) {
				got = append(got, o.GetKind())
			}
		}
		return got
	}
	if got := kinds(render(t, Release{})); len(got) != 0 {
		t.Errorf("defaults render %v, want no monitoring objects", got)
	}
	objs := render(t, Release{Namespace: "sbx", Values: map[string]any{"metrics": map[string]any{
		"serviceMonitor":   map[string]any{"enabled": true, "interval": "30s", "labels": map[string]any{"release": "prom"}},
		"prometheusRule":   map[string]any{"enabled": true, "labels": map[string]any{"release": "prom"}, "alertLabels": map[string]any{"team": "platform"}, "coldClaimRatio": 0.4, "certificateExpiryDays": 10, "claimBindSeconds": 0.3},
		"grafanaDashboard": map[string]any{"enabled": true, "namespace": "monitoring", "annotations": map[string]any{"grafana_folder": "Sandboxes"}},
	}}})
	if diff := cmp.Diff([]string{"ConfigMap", "PodMonitor", "PrometheusRule"}, slices.Sorted(slices.Values(kinds(objs)))); diff != "" {
		t.Errorf("monitoring objects (-want +got):\n%s", diff)
	}

	// The PodMonitor scrapes the agent's metrics port.
	pm, err := FindOne(objs, "PodMonitor")
	if err != nil {
		t.Fatal(err)
	}
	ds := one[appsv1.DaemonSet](t, objs, "DaemonSet")
	selector, _, _ := unstructured.NestedStringMap(pm.Object, "spec", "selector", "matchLabels")
	if !selects(selector, ds.Spec.Template.Labels) {
		t.Errorf("PodMonitor selector %v does not select the agent pods %v", selector, ds.Spec.Template.Labels)
	}
	endpoints, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
	if diff := cmp.Diff([]any{map[string]any{"port": "metrics", "path": "/metrics", "interval": "30s"}}, endpoints); diff != "" {
		t.Errorf("PodMonitor endpoints (-want +got):\n%s", diff)
	}
	if !slices.ContainsFunc(ds.Spec.Template.Spec.Containers[0].Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" }) {
		t.Errorf("the agent container has no port named metrics")
	}
	if pm.GetLabels()["release"] != "prom" {
		t.Errorf("PodMonitor labels %v lack release=prom", pm.GetLabels())
	}
	if objs := render(t, Release{Values: map[string]any{"agent": map[string]any{"enabled": false}, "metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}}}); len(Find(objs, "PodMonitor")) != 0 {
		t.Errorf("a PodMonitor without the agent")
	}

	// The alerts, with the thresholds and labels from values.
	rule, err := FindOne(objs, "PrometheusRule")
	if err != nil {
		t.Fatal(err)
	}
	alerts := alertsOf(t, rule)
	var names []string
	for _, a := range alerts {
		names = append(names, a.Alert)
		if a.Labels["team"] != "platform" || a.Labels["severity"] == "" {
			t.Errorf("alert %s labels %v, want a severity and team=platform", a.Alert, a.Labels)
		}
		if a.Annotations["summary"] == "" || a.Annotations["description"] == "" {
			t.Errorf("alert %s lacks a summary or description", a.Alert)
		}
		if strings.Count(a.Expr, "(") != strings.Count(a.Expr, ")") {
			t.Errorf("alert %s: unbalanced parentheses in %q", a.Alert, a.Expr)
		}
	}
	wantAlerts := []string{"SandboxWebhookErrors", "SandboxWebhookPanics", "SandboxWebhookSlow", "SandboxCertificateExpiring", "SandboxClaimKeysDiffer",
		"SandboxPoolNotReady", "SandboxClaimsCold", "SandboxClaimsSlow", "SandboxPodsOrphaned", "SandboxOrphanedPodsNotDeleted", "SandboxPrePullFailing", "SandboxImagesNotPulled"}
	if diff := cmp.Diff(wantAlerts, names); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
	for name, want := range map[string]string{"SandboxClaimsCold": "> 0.4", "SandboxCertificateExpiring": "< 10 * 86400", "SandboxWebhookSlow": "> 1", "SandboxClaimsSlow": "> 0.3"} {
		for _, a := range alerts {
			if a.Alert == name && !strings.Contains(a.Expr, want) {
				t.Errorf("alert %s expr %q lacks the threshold %q", name, a.Expr, want)
			}
		}
	}
	for _, a := range alerts {
		// Prometheus templates, not Helm's, in the descriptions.
		if d := a.Annotations["description"]; strings.Contains(d, "$labels") && !strings.Contains(d, "$labels.") {
			t.Errorf("alert %s description %q", a.Alert, a.Annotations["description"])
		}
	}

	// The dashboard: valid JSON with panels, for the sidecar.
	var cm *corev1.ConfigMap
	for _, u := range Find(objs, "ConfigMap") {
		if strings.HasSuffix(u.GetName(), "-dashboard") {
			cm = new(corev1.ConfigMap)
			if err := Into(u, cm); err != nil {
				t.Fatal(err)
			}
		}
	}
	if cm == nil {
		t.Fatal("no dashboard ConfigMap")
	}
	if cm.Namespace != "monitoring" || cm.Labels["grafana_dashboard"] != "1" || cm.Annotations["grafana_folder"] != "Sandboxes" {
		t.Errorf("dashboard ConfigMap %s/%s labels %v annotations %v", cm.Namespace, cm.Name, cm.Labels, cm.Annotations)
	}
	var dash dashboard
	if err := json.Unmarshal([]byte(cm.Data["sandbox-injector.json"]), &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.UID != "sandbox-injector" || len(dash.exprs()) < 10 {
		t.Errorf("dashboard %q with %d queries", dash.UID, len(dash.exprs()))
	}
}

type alert struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func alertsOf(t *testing.T, rule *unstructured.Unstructured) []alert {
	t.Helper()
	var spec struct {
		Groups []struct {
			Rules []alert `json:"rules"`
		} `json:"groups"`
	}
	data, err := json.Marshal(rule.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	var out []alert
	for _, g := range spec.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func (d dashboard) exprs() []string {
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

// pendingMetrics are metrics the alerts and the dashboard use that another
// part of the project is adding; they may be missing from the code for now,
// and the test says so. Empty: every metric exists.
var pendingMetrics = map[string]string{}

// TestMonitoringMetricsExist checks that every sandbox_* metric the alerts
// and the dashboard query is defined by the project's code: its name appears
// as a Go string literal outside tests (histograms by their base name).
func TestMonitoringMetricsExist(t *testing.T) {
	t.Parallel()
	objs := render(t, Release{Values: map[string]any{"metrics": map[string]any{
		"prometheusRule": map[string]any{"enabled": true}, "grafanaDashboard": map[string]any{"enabled": true},
	}}})
	rule, err := FindOne(objs, "PrometheusRule")
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, a := range alertsOf(t, rule) {
		exprs = append(exprs, a.Expr)
	}
	dir, err := ChartDir()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "dashboards", "sandbox-injector.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash dashboard
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	exprs = append(exprs, dash.exprs()...)

	used := map[string]bool{}
	metric := regexp.MustCompile(`\bsandbox_[a-z0-9_]+`)
	for _, e := range exprs {
		for _, m := range metric.FindAllString(e, -1) {
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if base, ok := strings.CutSuffix(m, suffix); ok && strings.HasSuffix(base, "_seconds") {
					m = base
				}
			}
			used[m] = true
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d metrics in the alerts and the dashboard: %v", len(used), used)
	}
	defined := definedMetrics(t)
	for _, m := range slices.Sorted(maps.Keys(used)) {
		switch {
		case defined[m]:
		case pendingMetrics[m] != "":
			t.Logf("%s is not in the code yet; %s adds it", m, pendingMetrics[m])
		default:
			t.Errorf("the alerts or the dashboard query %s, which no code of the project defines", m)
		}
	}
}

// definedMetrics returns every "sandbox_..." string literal in the module's
// non-test Go files.
func definedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	literal := regexp.MustCompile(`"(sandbox_[a-z0-9_]+)"`)
	out := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "_out" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllStringSubmatch(string(src), -1) {
			out[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
