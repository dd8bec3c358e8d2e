package charts

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"sandbox.io/injector/agent"
)

// TestAgentPrePull renders the agent with a pre-pull list and checks that
// the agent's own parser reads the ConfigMap the chart writes, that the
// agent is pointed at it and at the runner image, that the image filesystem
// is mounted read-only at the same path, and the RBAC it needs.
func TestAgentPrePull(t *testing.T) {
	t.Parallel()
	objs := render(t, Release{Namespace: "sbx", Values: map[string]any{
		"runner": map[string]any{"image": map[string]any{"registry": "127.0.0.1:5000", "tag": "v9"}},
		"agent": map[string]any{
			"enabled": true, "imageFsPath": "/data/containerd",
			"prepull": map[string]any{
				"images": []any{
					"busybox:1.36",
					map[string]any{"image": "reg.local:5000/private/app:v1", "pullSecrets": []any{"team-a/pull", "sbx/regcred"}},
					map[string]any{"image": "reg.local:5000/app@sha256:" + strings.Repeat("b", 64)},
				},
				"concurrency": 3, "diskThreshold": 75.5, "interval": "45s",
			},
		},
	}})
	cm := one[corev1.ConfigMap](t, objs, "ConfigMap")
	if cm.Name != "sandbox-injector-prepull" || cm.Namespace != "sbx" {
		t.Errorf("ConfigMap %s/%s", cm.Namespace, cm.Name)
	}
	entries, err := agent.ImageListFromConfigMap(cm)
	if err != nil {
		t.Errorf("the agent refuses the chart's list: %v\n%s", err, cm.Data[agent.ImageListKey])
	}
	want := []agent.ListEntry{
		{Ref: "busybox:1.36"},
		{Ref: "reg.local:5000/private/app:v1", PullSecrets: []types.NamespacedName{{Namespace: "team-a", Name: "pull"}, {Namespace: "sbx", Name: "regcred"}}},
		{Ref: "reg.local:5000/app@sha256:" + strings.Repeat("b", 64)},
	}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("list as the agent reads it (-want +got):\n%s", diff)
	}

	ds := one[appsv1.DaemonSet](t, objs, "DaemonSet")
	c := ds.Spec.Template.Spec.Containers[0]
	for _, arg := range []string{
		"--prepull-configmap=sandbox-injector-prepull", "--runner-image=127.0.0.1:5000/sandbox-runner:v9",
		"--learn-images=false", "--prepull-interval=45s", "--prepull-concurrency=3", "--prepull-disk-threshold=75.5",
		"--learn-max-images=50", "--learn-forget-after=24h",
	} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %q lack %s", c.Args, arg)
		}
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace"
	}) {
		t.Errorf("env %+v lacks POD_NAMESPACE from metadata.namespace", c.Env)
	}
	vi := slices.IndexFunc(ds.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "image-fs" })
	mi := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "image-fs" })
	if vi < 0 || mi < 0 {
		t.Fatalf("no image-fs volume and mount: %+v %+v", ds.Spec.Template.Spec.Volumes, c.VolumeMounts)
	}
	v, m := ds.Spec.Template.Spec.Volumes[vi], c.VolumeMounts[mi]
	if v.HostPath == nil || v.HostPath.Path != "/data/containerd" || v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate ||
		m.MountPath != "/data/containerd" || !m.ReadOnly {
		t.Errorf("image filesystem volume %+v mounted %+v; want the host directory read-only at the same path", v, m)
	}

	var role *rbacv1.Role
	for _, u := range Find(objs, "Role") {
		if strings.HasSuffix(u.GetName(), "-agent-prepull") {
			role = new(rbacv1.Role)
			if err := Into(u, role); err != nil {
				t.Fatal(err)
			}
		}
	}
	if role == nil || role.Namespace != "sbx" {
		t.Fatalf("no agent Role in the release namespace: %+v", role)
	}
	wantRole := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"sandbox-injector-prepull"}, Verbs: []string{"get", "list", "watch"}}}
	if diff := cmp.Diff(wantRole, role.Rules); diff != "" {
		t.Errorf("agent Role (-want +got):\n%s", diff)
	}
	if podRule(t, objs) {
		t.Error("the agent may list pods while agent.prepull.learn is false")
	}
	learning := render(t, Release{Namespace: "sbx", Values: map[string]any{"agent": map[string]any{"enabled": true, "prepull": map[string]any{"learn": true}}}})
	if !podRule(t, learning) {
		t.Error("agent.prepull.learn does not let the agent list and watch pods")
	}
}

// podRule reports whether the agent's ClusterRole lists and watches pods.
func podRule(t *testing.T, objs []*unstructured.Unstructured) bool {
	t.Helper()
	for _, u := range Find(objs, "ClusterRole") {
		if !strings.HasSuffix(u.GetName(), "-agent") {
			continue
		}
		var cr rbacv1.ClusterRole
		if err := Into(u, &cr); err != nil {
			t.Fatal(err)
		}
		for _, r := range cr.Rules {
			if slices.Contains(r.Resources, "pods") && slices.Contains(r.Verbs, "list") && slices.Contains(r.Verbs, "watch") {
				return true
			}
		}
	}
	return false
}

// TestAgentPrePullValuesRefused checks that the schema refuses a malformed
// list entry before anything is installed, naming the value.
func TestAgentPrePullValuesRefused(t *testing.T) {
	t.Parallel()
	helm := requireHelm(t)
	tests := []struct {
		name   string
		images []any
		want   string
	}{
		{name: "two images in one entry", images: []any{"a:v1 b:v1"}, want: "/agent/prepull/images/0"},
		{name: "a secret without namespace", images: []any{map[string]any{"image": "a:v1", "pullSecrets": []any{"regcred"}}}, want: "/agent/prepull/images/0"},
		{name: "an object without image", images: []any{map[string]any{"pullSecrets": []any{"a/b"}}}, want: "/agent/prepull/images/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := RenderRelease(t.Context(), helm, Release{Values: map[string]any{"agent": map[string]any{"enabled": true, "prepull": map[string]any{"images": tc.images}}}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want the schema to name %s", err, tc.want)
			}
		})
	}
}
