package charts

import (
	"sandbox.io/injector/internal/testenv"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// requireHelm returns the helm binary. Without one the test fails when CI is
// set, and is skipped loudly otherwise.
func requireHelm(t *testing.T) string {
	t.Helper()
	path, err := HelmPath()
	if err != nil {
		missing(t, err)
	}
	return path
}

// missing fails the test under CI and skips it, loudly, elsewhere.
func missing(t *testing.T, err error) {
	t.Helper()
	testenv.Missing(t, err.Error())
}

// render renders release r or fails the test.
func render(t *testing.T, r Release) []*unstructured.Unstructured {
	t.Helper()
	helm := requireHelm(t)
	objs, err := RenderRelease(t.Context(), helm, r)
	if err != nil {
		t.Fatalf("RenderRelease: %v", err)
	}
	return objs
}

// one returns the single object of kind, typed into T.
func one[T any](t *testing.T, objs []*unstructured.Unstructured, kind string) *T {
	t.Helper()
	u, err := FindOne(objs, kind)
	if err != nil {
		t.Fatal(err)
	}
	typed := new(T)
	if err := Into(u, typed); err != nil {
		t.Fatal(err)
	}
	return typed
}

// certManagerAPI is what certManager.enabled auto looks for.
const certManagerAPI = "cert-manager.io/v1/Issuer"

// webhookOnly returns values (nil: none) plus those that leave out what is
// not the webhook's own (the node agent, the users' roles, the helm test
// hook), for tests that look at the webhook's objects one kind at a time.
func webhookOnly(values map[string]any) map[string]any {
	out := map[string]any{
		"agent": map[string]any{"enabled": false},
		"rbac":  map[string]any{"aggregateToDefaultRoles": false, "claimantRole": false},
		"tests": map[string]any{"enabled": false},
	}
	for k, v := range values {
		out[k] = v
	}
	return out
}

// valueSets are the value sets every chart-wide test (lint, dry-run) covers.
// webhookNetworkPolicy is a webhook.networkPolicy value: the API server
// from one control-plane address, metrics scraped from a monitoring
// namespace.
var webhookNetworkPolicy = map[string]any{
	"enabled":       true,
	"apiServerFrom": []any{map[string]any{"ipBlock": map[string]any{"cidr": "192.0.2.10/32"}}},
	"metricsFrom":   []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}}},
}

var valueSets = []struct {
	name      string
	namespace string
	values    map[string]any
}{
	{name: "defaults"},
	{name: "cert-manager forced", values: map[string]any{"certManager": map[string]any{"enabled": true}}},
	{name: "cert-manager off, Helm's certificates", values: map[string]any{"certManager": map[string]any{"enabled": false}, "generatedCerts": map[string]any{"generator": "helm"}}},
	{name: "webhook only", values: webhookOnly(nil)},
	{name: "guard off", values: map[string]any{"guard": map[string]any{"enabled": false}}},
	{name: "node agent", values: map[string]any{"agent": map[string]any{"enabled": true, "criSocket": "/run/sandbox-cluster/containerd.sock"}, "runner": map[string]any{"injectionMethod": "imageVolume"}}},
	{name: "webhook-generated certificates", values: map[string]any{"certManager": map[string]any{"enabled": false}, "generatedCerts": map[string]any{"generator": "webhook"}}},
	{name: "webhook NetworkPolicy", values: map[string]any{"webhook": map[string]any{"networkPolicy": webhookNetworkPolicy}}},
	{name: "monitoring", values: map[string]any{"metrics": map[string]any{
		"serviceMonitor":   map[string]any{"enabled": true, "interval": "30s", "labels": map[string]any{"release": "prom"}},
		"prometheusRule":   map[string]any{"enabled": true, "alertLabels": map[string]any{"team": "platform"}},
		"grafanaDashboard": map[string]any{"enabled": true},
	}}},
	{name: "agent NetworkPolicy", values: map[string]any{"agent": map[string]any{"networkPolicy": map[string]any{"enabled": true, "metricsFrom": webhookNetworkPolicy["metricsFrom"]}}}},
	{
		name:      "custom namespaces",
		namespace: "sandbox-system",
		values: map[string]any{
			"webhook": map[string]any{"excludedNamespaces": []any{"ci", "monitoring"}, "failurePolicy": "Ignore", "timeoutSeconds": 10},
			"guard":   map[string]any{"validationActions": []any{"Warn", "Audit"}},
		},
	},
	{
		name: "single replica, no metrics, pinned images",
		values: map[string]any{
			"webhook": map[string]any{
				"replicas": 1,
				"image": map[string]any{
					"registry": "127.0.0.1:5000", "tag": "dev",
					"digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
				},
				"priorityClassName": "system-cluster-critical",
				"nodeSelector":      map[string]any{"kubernetes.io/os": "linux"},
				"tolerations":       []any{map[string]any{"operator": "Exists"}},
			},
			"runner":           map[string]any{"image": map[string]any{"registry": "127.0.0.1:5000"}, "port": 7090, "tokenSecretName": "my-token"},
			"metrics":          map[string]any{"enabled": false},
			"imagePullSecrets": []any{map[string]any{"name": "pull"}},
			"serviceAccount":   map[string]any{"annotations": map[string]any{"team.sandbox.io/owner": "platform"}},
		},
	},
}
