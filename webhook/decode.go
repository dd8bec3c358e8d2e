package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
)

// podView is the part of a pod the webhook reads. Decoding only this is
// what keeps a pod with thousands of env vars cheap: everything else (env,
// resources, probes' bodies, ...) is skipped by the decoder instead of being
// built into Go values, and the patch never needs it. Whatever the webhook
// reasons about must be here: a field left out looks absent (a container's
// own probes, which are never changed, are seen as present or not).
// TestMutationReadsOnlyDecodedFields fails when the package reads a field
// of the pod that is not listed here.
type podView struct {
	Metadata struct {
		Name         string            `json:"name"`
		GenerateName string            `json:"generateName"`
		Namespace    string            `json:"namespace"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Volumes            []volumeView                  `json:"volumes"`
		InitContainers     []containerView               `json:"initContainers"`
		Containers         []containerView               `json:"containers"`
		HostNetwork        bool                          `json:"hostNetwork"`
		OS                 *corev1.PodOS                 `json:"os"`
		NodeSelector       map[string]string             `json:"nodeSelector"`
		ImagePullSecrets   []corev1.LocalObjectReference `json:"imagePullSecrets"`
		ServiceAccountName string                        `json:"serviceAccountName"`
		NodeName           string                        `json:"nodeName"`
		Affinity           *corev1.Affinity              `json:"affinity"`
		RestartPolicy      corev1.RestartPolicy          `json:"restartPolicy"`
	} `json:"spec"`
}

type volumeView struct {
	Name string `json:"name"`
}

type containerView struct {
	Name           string                 `json:"name"`
	Image          string                 `json:"image"`
	Command        []string               `json:"command"`
	Args           []string               `json:"args"`
	Ports          []corev1.ContainerPort `json:"ports"`
	VolumeMounts   []corev1.VolumeMount   `json:"volumeMounts"`
	ReadinessProbe json.RawMessage        `json:"readinessProbe"`
	LivenessProbe  json.RawMessage        `json:"livenessProbe"`
	StartupProbe   json.RawMessage        `json:"startupProbe"`
}

// DecodePod decodes the part of a pod that the opt-in rules and the
// mutation read (see podView), into a corev1.Pod whose other fields are
// left empty; a present readiness, liveness or startup probe is an empty,
// non-nil Probe. Field
// names are case sensitive, as in the API server: encoding/json would
// accept "speC" for "spec", and the patch, whose paths use the real names,
// would then not apply to the raw object.
func DecodePod(raw []byte) (*corev1.Pod, error) {
	var v podView
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, &v); err != nil {
		return nil, fmt.Errorf("decoding pod: %w", err)
	}
	pod := &corev1.Pod{}
	pod.Name, pod.GenerateName, pod.Namespace = v.Metadata.Name, v.Metadata.GenerateName, v.Metadata.Namespace
	pod.Labels, pod.Annotations = v.Metadata.Labels, v.Metadata.Annotations
	s := &pod.Spec
	if v.Spec.Volumes != nil {
		s.Volumes = make([]corev1.Volume, len(v.Spec.Volumes))
		for i, vol := range v.Spec.Volumes {
			s.Volumes[i].Name = vol.Name
		}
	}
	s.InitContainers = containers(v.Spec.InitContainers)
	s.Containers = containers(v.Spec.Containers)
	s.HostNetwork, s.OS, s.NodeSelector = v.Spec.HostNetwork, v.Spec.OS, v.Spec.NodeSelector
	s.ImagePullSecrets, s.ServiceAccountName = v.Spec.ImagePullSecrets, v.Spec.ServiceAccountName
	s.NodeName, s.Affinity = v.Spec.NodeName, v.Spec.Affinity
	s.RestartPolicy = v.Spec.RestartPolicy
	return pod, nil
}

func containers(views []containerView) []corev1.Container {
	if views == nil {
		return nil
	}
	out := make([]corev1.Container, len(views))
	for i, c := range views {
		out[i] = corev1.Container{
			Name: c.Name, Image: c.Image, Command: c.Command, Args: c.Args,
			Ports: c.Ports, VolumeMounts: c.VolumeMounts,
		}
		out[i].ReadinessProbe = presentProbe(c.ReadinessProbe)
		out[i].LivenessProbe = presentProbe(c.LivenessProbe)
		out[i].StartupProbe = presentProbe(c.StartupProbe)
	}
	return out
}

// presentProbe is an empty Probe where the pod has one, nil where not.
func presentProbe(raw json.RawMessage) *corev1.Probe {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	return &corev1.Probe{}
}
