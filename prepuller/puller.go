package prepuller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/util/flowcontrol"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"sandbox.io/injector/internal/logging"
)

// Dial connects to the CRI image service on a unix socket (the runtime's
// socket, for containerd e.g. containerd.sock under its run directory).
// The connection is made lazily; close it when done.
func Dial(socket string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connecting to the CRI socket %s: %w", socket, err)
	}
	return conn, nil
}

// Puller keeps the desired images present on one node. Status may be called
// at any time; Sync calls are serialized.
type Puller struct {
	client  runtimeapi.ImageServiceClient
	opts    options
	metrics *metrics

	syncMu sync.Mutex // one Sync at a time

	mu      sync.Mutex
	entries []*entry
	paused  string // why pulls are paused, "" when not

	backoff *flowcontrol.Backoff // per image key; safe for concurrent use
}

// New returns a Puller pulling through client.
func New(client runtimeapi.ImageServiceClient, opts ...Option) (*Puller, error) {
	if client == nil {
		return nil, errors.New("CRI image service client is nil")
	}
	o := defaultOptions()
	var errs []error
	for _, opt := range opts {
		errs = append(errs, opt(&o))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuring the pre-puller: %w", err)
	}
	m, err := newMetrics(o.registerer)
	if err != nil {
		return nil, err
	}
	b := flowcontrol.NewBackOffWithJitter(o.backoffBase, o.backoffMax, o.jitter)
	b.Clock = o.clock // the delays count on the Puller's clock
	return &Puller{client: client, opts: o, metrics: m, backoff: b}, nil
}

// Sync makes one round towards desired: it lists the runtime's images,
// pulls the missing ones (and tags due for a refresh) at most the
// configured number at a time, and returns when those pulls have ended.
// A failed pull is recorded in Status and retried by a later Sync once its
// backoff has expired. Before each pull it reads the image filesystem's
// use; above the threshold it starts no more pulls and marks the rest
// paused. Sync returns an error only when the round could not run (the
// runtime unreachable, ctx done); failures of single images are in Status.
func (p *Puller) Sync(ctx context.Context, desired []Image) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	log := logging.FromContext(ctx)

	list, err := p.client.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return fmt.Errorf("listing images through the CRI: %w", err)
	}
	p.mu.Lock()
	known := make(map[string]*entry, len(p.entries))
	for _, e := range p.entries {
		known[e.key()] = e
	}
	entries, pull := plan(planInput{
		now:     p.opts.clock.Now(),
		refresh: p.opts.refresh,
		desired: desired,
		present: newPresentSet(list.GetImages()),
		known:   known,
	})
	p.entries = entries
	for _, e := range entries {
		if e.State == StatePresent {
			p.backoff.Reset(e.key()) // present again: a new failure starts at the base
		}
	}
	p.backoff.GC()
	p.updateGaugesLocked()
	p.mu.Unlock()

	sem := make(chan struct{}, p.opts.concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, e := range pull {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("syncing images: %w", ctx.Err())
		}
		if reason := p.diskFull(ctx); reason != "" {
			<-sem
			p.pause(ctx, reason, pull[i:])
			break
		}
		p.setPaused("")
		p.mu.Lock()
		e.State = StatePulling
		p.mu.Unlock()
		log.Debug("pulling image", "image", e.Ref)
		wg.Go(func() {
			defer func() { <-sem }()
			p.pull(ctx, e)
		})
	}
	wg.Wait()
	if len(pull) == 0 {
		p.setPaused("")
	}
	p.mu.Lock()
	p.updateGaugesLocked()
	p.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("syncing images: %w", err)
	}
	return nil
}

func (e *entry) key() string {
	if e.invalid {
		return e.Ref
	}
	return e.Name
}

// pull pulls one image and records the outcome.
func (p *Puller) pull(ctx context.Context, e *entry) {
	log := logging.FromContext(ctx)
	start := p.opts.clock.Now()
	resp, err := p.client.PullImage(ctx, &runtimeapi.PullImageRequest{
		Image: &runtimeapi.ImageSpec{Image: e.Name},
		Auth:  e.auth.cri(),
	})
	took := p.opts.clock.Since(start)
	if err != nil && ctx.Err() != nil {
		// Cancelled, not failed: the next Sync tries again at once.
		p.mu.Lock()
		if e.ImageID != "" {
			e.State = StatePresent
		} else {
			e.State = StateMissing
		}
		p.mu.Unlock()
		return
	}
	if err != nil {
		p.metrics.pulls.WithLabelValues(ResultFailure).Inc()
		p.metrics.duration.WithLabelValues(ResultFailure).Observe(took.Seconds())
		p.mu.Lock()
		e.Attempts++
		e.State = StateFailed
		e.LastError = status.Convert(err).Message()
		now := p.opts.clock.Now()
		p.backoff.Next(e.key(), now)
		wait := p.backoff.Get(e.key())
		e.NextRetry = now.Add(wait)
		attempts, next := e.Attempts, e.NextRetry
		p.mu.Unlock()
		log.Warn("image pull failed", "image", e.Ref, "attempts", attempts,
			"retryAfter", wait.Round(time.Second).String(), "nextRetry", next, "err", err)
		return
	}
	p.metrics.pulls.WithLabelValues(ResultSuccess).Inc()
	p.metrics.duration.WithLabelValues(ResultSuccess).Observe(took.Seconds())
	var size uint64
	if st, err := p.client.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: resp.GetImageRef()}}); err == nil {
		size = st.GetImage().GetSize()
	}
	p.mu.Lock()
	if resp.GetImageRef() != e.ImageID {
		p.metrics.bytes.Add(float64(size))
	}
	e.State, e.Attempts, e.LastError, e.NextRetry = StatePresent, 0, "", time.Time{}
	e.ImageID, e.Size, e.LastPulled = resp.GetImageRef(), size, p.opts.clock.Now()
	p.backoff.Reset(e.key())
	p.mu.Unlock()
	log.Info("image pulled", "image", e.Ref, "imageID", resp.GetImageRef(), "size", size, "duration", took.String())
}

// diskFull returns why pulls must pause, or "" when they may go on. When
// the use cannot be read, pulls go on (and the reason is logged): a
// pre-puller that stops for good because it cannot see a mount is worse.
func (p *Puller) diskFull(ctx context.Context) string {
	if p.opts.diskThreshold >= 100 {
		return ""
	}
	log := logging.FromContext(ctx)
	info, err := p.client.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		log.Warn("reading the image filesystem use", "err", err)
		return ""
	}
	for _, fs := range info.GetImageFilesystems() {
		mp := fs.GetFsId().GetMountpoint()
		used, capacity, err := p.opts.fsUsage(mp)
		if err != nil {
			log.Warn("reading the image filesystem use", "mountpoint", mp, "err", err)
			continue
		}
		if capacity == 0 {
			continue
		}
		pct := 100 * float64(used) / float64(capacity)
		if pct > p.opts.diskThreshold {
			return fmt.Sprintf("image filesystem %s is %.1f%% used, above the %g%% threshold", mp, pct, p.opts.diskThreshold)
		}
	}
	return ""
}

// pause marks the images not started as paused, and says so once.
func (p *Puller) pause(ctx context.Context, reason string, rest []*entry) {
	p.mu.Lock()
	for _, e := range rest {
		if e.State == StatePresent {
			continue // a refresh that waits: the image is still there
		}
		e.State, e.LastError = StatePaused, reason
	}
	was := p.paused
	p.mu.Unlock()
	p.setPaused(reason)
	if was == "" {
		logging.FromContext(ctx).Info("pausing image pulls", "reason", reason, "waiting", len(rest))
	}
}

func (p *Puller) setPaused(reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = reason
	if reason != "" {
		p.metrics.paused.Set(1)
	} else {
		p.metrics.paused.Set(0)
	}
}

func (p *Puller) updateGaugesLocked() {
	present := 0
	for _, e := range p.entries {
		if e.State == StatePresent {
			present++
		}
	}
	p.metrics.present.Set(float64(present))
	p.metrics.desired.Set(float64(len(p.entries)))
}

// Status returns the state of every desired image of the last Sync,
// sorted by Ref.
func (p *Puller) Status() []ImageStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ImageStatus, 0, len(p.entries))
	for _, e := range p.entries {
		out = append(out, e.ImageStatus)
	}
	slices.SortFunc(out, func(a, b ImageStatus) int { return strings.Compare(a.Ref, b.Ref) })
	return out
}

// Paused returns why pulls are paused, or "" when they are not.
func (p *Puller) Paused() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}
