package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/prepuller"
)

func ppNN(ns, n string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: n} }

func ppPool(ns, name, image string, selector map[string]string, secrets ...string) v1alpha1.SandboxPool {
	p := v1alpha1.SandboxPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	p.Spec.Template.Image = image
	p.Spec.NodeSelector = selector
	for _, s := range secrets {
		p.Spec.Template.ImagePullSecrets = append(p.Spec.Template.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return p
}

func TestDesired(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   DesiredInput
		want []WantedImage
	}{
		{name: "nothing", in: DesiredInput{}, want: nil},
		{
			name: "every source, in order",
			in: DesiredInput{
				List:        []ListEntry{{Ref: "reg.local/list:v1", PullSecrets: []types.NamespacedName{ppNN("sbx", "pull")}}},
				RunnerImage: "reg.local/sandbox-runner:v1",
				Pools:       []v1alpha1.SandboxPool{ppPool("team-b", "py", "reg.local/py:3", nil, "b-pull"), ppPool("team-a", "go", "reg.local/go:1", nil)},
				Learned:     []LearnedImage{{Ref: "reg.local/learned:v1", PullSecrets: []types.NamespacedName{ppNN("apps", "p")}}},
			},
			want: []WantedImage{
				{Ref: "reg.local/list:v1", PullSecrets: []types.NamespacedName{ppNN("sbx", "pull")}, Sources: []string{SourceList}},
				{Ref: "reg.local/sandbox-runner:v1", Sources: []string{SourceRunner}},
				{Ref: "reg.local/go:1", Sources: []string{"pool team-a/go"}},
				{Ref: "reg.local/py:3", PullSecrets: []types.NamespacedName{ppNN("team-b", "b-pull")}, Sources: []string{"pool team-b/py"}},
				{Ref: "reg.local/learned:v1", PullSecrets: []types.NamespacedName{ppNN("apps", "p")}, Sources: []string{SourceLearned}},
			},
		},
		{
			name: "one image named several ways is merged with all its secrets",
			in: DesiredInput{
				List:        []ListEntry{{Ref: "busybox", PullSecrets: []types.NamespacedName{ppNN("z", "s")}}, {Ref: "docker.io/library/busybox:latest"}},
				RunnerImage: "index.docker.io/library/busybox:latest",
				Pools:       []v1alpha1.SandboxPool{ppPool("a", "p", "busybox:latest", nil, "s", "s")},
				Learned:     []LearnedImage{{Ref: "busybox", PullSecrets: []types.NamespacedName{ppNN("a", "s"), ppNN("b", "s")}}},
			},
			want: []WantedImage{{
				Ref:         "busybox",
				PullSecrets: []types.NamespacedName{ppNN("a", "s"), ppNN("b", "s"), ppNN("z", "s")},
				Sources:     []string{SourceList, SourceRunner, "pool a/p", SourceLearned},
			}},
		},
		{
			name: "a pool whose node selector does not match this node is skipped",
			in: DesiredInput{
				NodeLabels: map[string]string{"pool": "gpu", "zone": "a"},
				Pools: []v1alpha1.SandboxPool{
					ppPool("a", "match", "m:v1", map[string]string{"pool": "gpu"}),
					ppPool("a", "other", "o:v1", map[string]string{"pool": "cpu"}),
					ppPool("a", "all", "all:v1", nil),
				},
			},
			want: []WantedImage{{Ref: "all:v1", Sources: []string{"pool a/all"}}, {Ref: "m:v1", Sources: []string{"pool a/match"}}},
		},
		{
			name: "an unparsable reference is kept as written (the puller reports it), empty ones dropped",
			in:   DesiredInput{RunnerImage: "  ", Pools: []v1alpha1.SandboxPool{ppPool("a", "bad", "Bad:Ref:x", nil)}},
			want: []WantedImage{{Ref: "Bad:Ref:x", Sources: []string{"pool a/bad"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, Desired(tc.in)); diff != "" {
				t.Errorf("Desired (-want +got):\n%s", diff)
			}
		})
	}
}

func ppInjectedPod(ns, name string, images []string, secrets ...string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Annotations: map[string]string{v1alpha1.AnnotationStatus: `{"state":"injected"}`}}}
	p.Spec.InitContainers = []corev1.Container{{Name: "sandbox-runner", Image: "reg/runner:v1"}}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Image: img})
	}
	for _, s := range secrets {
		p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return p
}

func TestLearner(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &Learner{Max: 3, ForgetAfter: time.Hour}
	refs := func(ls []LearnedImage) []string {
		var out []string
		for _, x := range ls {
			out = append(out, x.Ref)
		}
		return out
	}
	plain := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "plain"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "reg/not-injected:v1"}}}}

	got := l.Observe([]corev1.Pod{plain, ppInjectedPod("apps", "one", []string{"reg/app:v1"}, "pull")}, t0)
	want := []LearnedImage{
		{Ref: "reg/app:v1", PullSecrets: []types.NamespacedName{ppNN("apps", "pull")}, LastSeen: t0},
		{Ref: "reg/runner:v1", PullSecrets: []types.NamespacedName{ppNN("apps", "pull")}, LastSeen: t0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("first look (-want +got):\n%s", diff)
	}

	// The pod is gone: its images are remembered until ForgetAfter.
	if got := refs(l.Observe(nil, t0.Add(time.Hour))); !cmp.Equal(got, []string{"reg/app:v1", "reg/runner:v1"}) {
		t.Errorf("an hour later with no pod: %v, want both still remembered", got)
	}
	// Two new images push the total over Max: the least recently seen goes.
	t1 := t0.Add(30 * time.Minute)
	got = l.Observe([]corev1.Pod{ppInjectedPod("apps", "two", []string{"reg/b:v1", "reg/c:v1"})}, t1)
	if r := refs(got); !cmp.Equal(r, []string{"reg/b:v1", "reg/c:v1", "reg/runner:v1"}) {
		t.Errorf("over the bound: %v, want the 3 most recently seen", r)
	}
	// Not seen for longer than ForgetAfter: forgotten.
	if r := refs(l.Observe(nil, t1.Add(time.Hour+time.Second))); len(r) != 0 {
		t.Errorf("after ForgetAfter: %v, want none", r)
	}
	// Max 0 learns nothing.
	if got := (&Learner{Max: 0, ForgetAfter: time.Hour}).Observe([]corev1.Pod{ppInjectedPod("a", "p", []string{"x:v1"})}, t0); len(got) != 0 {
		t.Errorf("Max 0: %v", got)
	}
}

func ppDockerSecret(t *testing.T, ns, name, host, user, pass string) *corev1.Secret {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: raw},
	}
}

func TestResolveAuth(t *testing.T) {
	t.Parallel()
	secrets := map[types.NamespacedName]*corev1.Secret{
		ppNN("a", "good"):  ppDockerSecret(t, "a", "good", "reg.local", "u", "p"),
		ppNN("a", "other"): ppDockerSecret(t, "a", "other", "elsewhere.local", "x", "y"),
		ppNN("a", "broken"): {ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "broken"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte("{not json")}},
	}
	reads := map[types.NamespacedName]int{}
	get := func(_ context.Context, key types.NamespacedName) (*corev1.Secret, error) {
		reads[key]++
		if s, ok := secrets[key]; ok {
			return s, nil
		}
		return nil, errors.New(`secrets "` + key.Name + `" not found`)
	}
	wanted := []WantedImage{
		{Ref: "reg.local/app:v1", PullSecrets: []types.NamespacedName{ppNN("a", "good"), ppNN("a", "missing"), ppNN("a", "other")}},
		{Ref: "reg.local/two:v1", PullSecrets: []types.NamespacedName{ppNN("a", "missing")}},
		{Ref: "reg.local/three:v1", PullSecrets: []types.NamespacedName{ppNN("a", "broken")}},
		{Ref: "reg.local/anon:v1"},
	}
	images, problems := ResolveAuth(t.Context(), wanted, get)
	want := []prepuller.Image{
		{Ref: "reg.local/app:v1", Auth: &prepuller.AuthConfig{Username: "u", Password: "p"}},
		{Ref: "reg.local/two:v1"},
		{Ref: "reg.local/three:v1"},
		{Ref: "reg.local/anon:v1"},
	}
	if diff := cmp.Diff(want, images); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	if len(problems) != 2 || !strings.Contains(problems[0], "pull secret a/missing (for reg.local/app:v1)") ||
		!strings.Contains(problems[1], "pull secrets of reg.local/three:v1") {
		t.Errorf("problems %q, want the missing secret once and the broken one", problems)
	}
	if reads[ppNN("a", "missing")] != 1 {
		t.Errorf("the missing secret was read %d times, want once", reads[ppNN("a", "missing")])
	}
}
