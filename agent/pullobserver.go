package agent

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"
)

// PullOutcome is one pull the pre-puller made through the CRI.
type PullOutcome struct {
	// Image is the image as pulled (the runtime's normalized name).
	Image string
	// Before is the runtime's id of the image before the pull, "" when it
	// was not present; After is the id the pull brought ("" on failure).
	Before, After string
	// Err is the runtime's error (which carries the registry's), or nil.
	Err  error
	Took time.Duration
	// Cancelled pulls were cut short by the agent itself (shutdown): not
	// failures.
	Cancelled bool
}

// PullObserver wraps a CRI image service so that the agent sees every pull
// the pre-puller makes, with the image id before and after: it reports a
// pull that brought a new image (first pull, a moved tag, a re-pull after
// the kubelet's garbage collector removed it), not the hourly refresh of a
// tag that did not move.
type PullObserver struct {
	runtimeapi.ImageServiceClient
	clock clock.PassiveClock

	mu       sync.Mutex
	outcomes []PullOutcome
}

// NewPullObserver wraps c.
func NewPullObserver(c runtimeapi.ImageServiceClient, clk clock.PassiveClock) *PullObserver {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &PullObserver{ImageServiceClient: c, clock: clk}
}

// PullImage pulls through the wrapped client and records the outcome.
func (o *PullObserver) PullImage(ctx context.Context, in *runtimeapi.PullImageRequest, opts ...grpc.CallOption) (*runtimeapi.PullImageResponse, error) {
	image := in.GetImage().GetImage()
	var before string
	if st, err := o.ImageServiceClient.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: in.GetImage()}); err == nil {
		before = st.GetImage().GetId()
	}
	start := o.clock.Now()
	resp, err := o.ImageServiceClient.PullImage(ctx, in, opts...)
	out := PullOutcome{Image: image, Before: before, Err: err, Took: o.clock.Since(start)}
	if err == nil {
		out.After = resp.GetImageRef()
	} else if ctx.Err() != nil {
		out.Cancelled = true
	}
	o.mu.Lock()
	o.outcomes = append(o.outcomes, out)
	o.mu.Unlock()
	return resp, err
}

// Drain returns the outcomes since the last Drain.
func (o *PullObserver) Drain() []PullOutcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.outcomes
	o.outcomes = nil
	return out
}
