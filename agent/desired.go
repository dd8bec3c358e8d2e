package agent

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"sandbox.io/injector/api/v1alpha1"
)

// Where a desired image comes from (WantedImage.Sources).
const (
	SourceList    = "list"    // the chart's list (the pre-pull ConfigMap)
	SourceRunner  = "runner"  // the runner image
	SourcePool    = "pool"    // a SandboxPool's template ("pool ns/name")
	SourceLearned = "learned" // an injected pod seen in the cluster
)

// WantedImage is one image of the desired set, with every pull secret that
// any of its sources names.
type WantedImage struct {
	// Ref is the reference as its first source spells it.
	Ref string
	// PullSecrets are sorted and unique.
	PullSecrets []types.NamespacedName
	// Sources say why the image is wanted: SourceList, SourceRunner,
	// "pool <namespace>/<name>", SourceLearned.
	Sources []string
}

// DesiredInput is everything the desired set is computed from.
type DesiredInput struct {
	// List is the chart's image list.
	List []ListEntry
	// RunnerImage is the runner image; "" for none.
	RunnerImage string
	// Pools are the SandboxPools of the cluster; a pool whose node selector
	// does not match NodeLabels keeps no pods on this node and is skipped.
	Pools []v1alpha1.SandboxPool
	// NodeLabels are the labels of this agent's node.
	NodeLabels map[string]string
	// Learned are the images of injected pods (see Learner).
	Learned []LearnedImage
}

// Desired merges the sources into the desired set: one WantedImage per
// image (references that name the same image, such as "busybox" and
// "docker.io/library/busybox:latest", are one), in the order first seen:
// the list, the runner, the pools (by namespace/name), the learned images.
func Desired(in DesiredInput) []WantedImage {
	var out []WantedImage
	index := map[string]int{}
	add := func(ref string, secrets []types.NamespacedName, source string) {
		ref = strings.TrimSpace(ref)
		if ref == "" {
			return
		}
		k := imageKey(ref)
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, WantedImage{Ref: ref})
		}
		w := &out[i]
		for _, s := range secrets {
			if !slices.Contains(w.PullSecrets, s) {
				w.PullSecrets = append(w.PullSecrets, s)
			}
		}
		if !slices.Contains(w.Sources, source) {
			w.Sources = append(w.Sources, source)
		}
	}
	for _, e := range in.List {
		add(e.Ref, e.PullSecrets, SourceList)
	}
	add(in.RunnerImage, nil, SourceRunner)
	pools := slices.Clone(in.Pools)
	slices.SortFunc(pools, func(a, b v1alpha1.SandboxPool) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	for _, p := range pools {
		if !labels.SelectorFromSet(p.Spec.NodeSelector).Matches(labels.Set(in.NodeLabels)) {
			continue
		}
		add(p.Spec.Template.Image, localSecrets(p.Namespace, p.Spec.Template.ImagePullSecrets), SourcePool+" "+p.Namespace+"/"+p.Name)
	}
	for _, l := range in.Learned {
		add(l.Ref, l.PullSecrets, SourceLearned)
	}
	for i := range out {
		slices.SortFunc(out[i].PullSecrets, compareNN)
	}
	return out
}

// imageKey is the form in which two references to the same image are
// equal; an unparsable reference is its own key (the puller reports it).
func imageKey(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ref
	}
	return r.Name()
}

func localSecrets(ns string, refs []corev1.LocalObjectReference) []types.NamespacedName {
	var out []types.NamespacedName
	for _, r := range refs {
		if r.Name != "" {
			out = append(out, types.NamespacedName{Namespace: ns, Name: r.Name})
		}
	}
	return out
}

func compareNN(a, b types.NamespacedName) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}

// LearnedImage is an image of injected pods, remembered by a Learner.
type LearnedImage struct {
	Ref         string
	PullSecrets []types.NamespacedName
	// LastSeen is the last time a pod using it was seen.
	LastSeen time.Time
}

// Learner remembers the images of injected pods (pods carrying
// v1alpha1.AnnotationStatus) seen in the cluster, bounded: it forgets an
// image no pod has used for ForgetAfter, and keeps at most Max images (the
// most recently seen). It is not safe for concurrent use.
type Learner struct {
	// Max is the most images remembered; below 1 remembers none.
	Max int
	// ForgetAfter is how long an image no pod uses is remembered.
	ForgetAfter time.Duration

	seen map[string]*LearnedImage // by imageKey
}

// Observe records the images of the injected pods among pods as seen at
// now, and returns what is remembered, sorted by reference.
func (l *Learner) Observe(pods []corev1.Pod, now time.Time) []LearnedImage {
	if l.seen == nil {
		l.seen = map[string]*LearnedImage{}
	}
	for i := range pods {
		p := &pods[i]
		if _, ok := p.Annotations[v1alpha1.AnnotationStatus]; !ok {
			continue
		}
		secrets := localSecrets(p.Namespace, p.Spec.ImagePullSecrets)
		for _, list := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for _, c := range list {
				if c.Image == "" {
					continue
				}
				k := imageKey(c.Image)
				li := l.seen[k]
				if li == nil {
					li = &LearnedImage{Ref: c.Image}
					l.seen[k] = li
				}
				li.LastSeen = now
				for _, s := range secrets {
					if !slices.Contains(li.PullSecrets, s) {
						li.PullSecrets = append(li.PullSecrets, s)
					}
				}
			}
		}
	}
	out := make([]LearnedImage, 0, len(l.seen))
	for k, li := range l.seen {
		if now.Sub(li.LastSeen) > l.ForgetAfter {
			delete(l.seen, k)
			continue
		}
		out = append(out, *li)
	}
	// Most recently seen first, then by reference: the bound keeps the head.
	slices.SortFunc(out, func(a, b LearnedImage) int {
		return cmp.Or(b.LastSeen.Compare(a.LastSeen), strings.Compare(a.Ref, b.Ref))
	})
	if max := max(l.Max, 0); len(out) > max {
		for _, li := range out[max:] {
			delete(l.seen, imageKey(li.Ref))
		}
		out = out[:max]
	}
	slices.SortFunc(out, func(a, b LearnedImage) int { return strings.Compare(a.Ref, b.Ref) })
	for i := range out {
		out[i].PullSecrets = slices.Clone(out[i].PullSecrets)
		slices.SortFunc(out[i].PullSecrets, compareNN)
	}
	return out
}
