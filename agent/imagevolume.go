package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/tools/events"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sandbox.io/injector/api/v1alpha1"
)

// VersionClient is the part of the CRI runtime service the labeler uses;
// runtimeapi.RuntimeServiceClient implements it.
type VersionClient interface {
	Version(ctx context.Context, in *runtimeapi.VersionRequest, opts ...grpc.CallOption) (*runtimeapi.VersionResponse, error)
}

var _ VersionClient = runtimeapi.RuntimeServiceClient(nil)

// minImageVolume is the first release of each runtime that mounts
// Kubernetes image volumes (KEP-4639). Older containerd fails such pods for
// ever with "failed to mkdir" instead of refusing them.
var minImageVolume = map[string]*version.Version{
	"containerd": version.MajorMinor(2, 1),
	"cri-o":      version.MajorMinor(1, 31),
}

// SupportsImageVolumes reports whether a runtime, by the name and version
// the CRI Version call returns ("v2.4.2", "2.1.0-rc.1", "1.31"), mounts
// image volumes. Unknown runtimes and unparsable versions count as
// unsupported: "auto" then copies, which works everywhere.
func SupportsImageVolumes(runtimeName, runtimeVersion string) bool {
	min, ok := minImageVolume[strings.ToLower(runtimeName)]
	if !ok {
		return false
	}
	v, err := version.ParseGeneric(runtimeVersion)
	if err != nil {
		return false
	}
	// ParseGeneric drops a suffix: a release candidate of the first release
	// counts as that release.
	return v.AtLeast(min)
}

// ImageVolumeLabeler keeps one node's v1alpha1.LabelImageVolume label in
// line with what its container runtime supports.
type ImageVolumeLabeler struct {
	// NodeName is the node this agent runs on. Required.
	NodeName string
	// Runtime is the node's CRI runtime service. Required.
	Runtime VersionClient
	// Client reads and patches the Node. Required.
	Client client.Client
	// Recorder records the Events on the Node (the manager's
	// GetEventRecorder); nil records none.
	Recorder events.EventRecorder
}

// ErrIncomplete is returned by Sync when a required field is not set.
var ErrIncomplete = errors.New("image volume labeler: NodeName, Runtime and Client are required")

// Sync asks the runtime, and sets the label when it differs, recording an
// Event on the Node that says why. It reports whether it changed the label.
func (l *ImageVolumeLabeler) Sync(ctx context.Context) (bool, error) {
	if l.NodeName == "" || l.Runtime == nil || l.Client == nil {
		return false, ErrIncomplete
	}
	v, err := l.Runtime.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return false, fmt.Errorf("asking the container runtime its version: %w", err)
	}
	supported := SupportsImageVolumes(v.RuntimeName, v.RuntimeVersion)
	want := strconv.FormatBool(supported)

	var node corev1.Node
	if err := l.Client.Get(ctx, types.NamespacedName{Name: l.NodeName}, &node); err != nil {
		return false, fmt.Errorf("reading node %s: %w", l.NodeName, err)
	}
	old, had := node.Labels[v1alpha1.LabelImageVolume]
	if had && old == want {
		return false, nil
	}
	patched := node.DeepCopy()
	if patched.Labels == nil {
		patched.Labels = map[string]string{}
	}
	patched.Labels[v1alpha1.LabelImageVolume] = want
	if err := l.Client.Patch(ctx, patched, client.MergeFrom(&node)); err != nil {
		return false, fmt.Errorf("labelling node %s %s=%s: %w", l.NodeName, v1alpha1.LabelImageVolume, want, err)
	}
	verb := "does not support"
	if supported {
		verb = "supports"
	}
	msg := fmt.Sprintf("container runtime %s %s %s image volumes: %s=%s", v.RuntimeName, v.RuntimeVersion, verb, v1alpha1.LabelImageVolume, want)
	if had {
		msg += fmt.Sprintf(" (was %s)", old)
	}
	// The action tells a first label from a corrected one: the recorder
	// would fold the second into the first's series otherwise.
	action := "Label"
	if had {
		action = "Relabel"
	}
	eventf(l.Recorder, nodeRef(&node), corev1.EventTypeNormal, "ImageVolumeSupport", action, msg)
	return true, nil
}
