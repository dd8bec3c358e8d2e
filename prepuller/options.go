package prepuller

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// Defaults of the options.
const (
	// DefaultConcurrency is the number of pulls in flight at once per node.
	DefaultConcurrency = 2
	// DefaultBackoffBase is the delay after an image's first failed pull.
	DefaultBackoffBase = 10 * time.Second
	// DefaultBackoffMax caps the delay between retries of one image.
	DefaultBackoffMax = 5 * time.Minute
	// DefaultJitter lengthens each delay by up to 20%.
	DefaultJitter = 0.2
	// DefaultDiskThreshold is the image filesystem use (percent) above which
	// pulls pause: below the kubelet's default image GC high threshold (85),
	// so that pre-pulling alone never makes the kubelet collect images.
	DefaultDiskThreshold = 80
	// DefaultRefresh is how long a tag is trusted before it is pulled again
	// to follow a moved tag.
	DefaultRefresh = time.Hour
)

// Option configures a Puller. A bad value is an error from New, never a
// failure halfway through a Sync.
type Option func(*options) error

type options struct {
	concurrency   int
	backoffBase   time.Duration
	backoffMax    time.Duration
	jitter        float64
	diskThreshold float64
	refresh       time.Duration
	clock         clock.Clock
	registerer    prometheus.Registerer
	fsUsage       FsUsageFunc
}

func defaultOptions() options {
	return options{
		concurrency:   DefaultConcurrency,
		backoffBase:   DefaultBackoffBase,
		backoffMax:    DefaultBackoffMax,
		jitter:        DefaultJitter,
		diskThreshold: DefaultDiskThreshold,
		refresh:       DefaultRefresh,
		clock:         clock.RealClock{},
		fsUsage:       StatfsUsage,
	}
}

// WithConcurrency sets how many pulls run at once (default
// DefaultConcurrency). It must be at least 1.
func WithConcurrency(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("concurrency %d is below 1", n)
		}
		o.concurrency = n
		return nil
	}
}

// WithBackoff sets the retry delay of a failing image
// (k8s.io/client-go/util/flowcontrol's Backoff): base after the first
// failure, doubling after each further one up to max, each step lengthened
// by up to jitter (a fraction in [0, 1)) of the delay before it. An image
// that did not fail for twice max starts again at base. Defaults:
// DefaultBackoffBase, DefaultBackoffMax, DefaultJitter.
func WithBackoff(base, max time.Duration, jitter float64) Option {
	return func(o *options) error {
		var errs []error
		if base <= 0 {
			errs = append(errs, fmt.Errorf("backoff base %s is not positive", base))
		}
		if max < base {
			errs = append(errs, fmt.Errorf("backoff max %s is below the base %s", max, base))
		}
		if jitter < 0 || jitter >= 1 {
			errs = append(errs, fmt.Errorf("backoff jitter %g is not in [0, 1)", jitter))
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		o.backoffBase, o.backoffMax, o.jitter = base, max, jitter
		return nil
	}
}

// WithDiskThreshold sets the use of the image filesystem, in percent, above
// which no new pull starts (default DefaultDiskThreshold); 100 never
// pauses. It must be in (0, 100].
func WithDiskThreshold(percent float64) Option {
	return func(o *options) error {
		if percent <= 0 || percent > 100 {
			return fmt.Errorf("disk threshold %g%% is not in (0, 100]", percent)
		}
		o.diskThreshold = percent
		return nil
	}
}

// WithRefresh sets how long a present tag is trusted before it is pulled
// again to follow a moved tag (default DefaultRefresh); 0 never pulls a
// present tag again. Images named by digest never move.
func WithRefresh(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("refresh interval %s is negative", d)
		}
		o.refresh = d
		return nil
	}
}

// WithClock sets the clock that backoff, refresh and durations read
// (default the real clock); tests pass a fake one.
func WithClock(c clock.Clock) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("clock is nil")
		}
		o.clock = c
		return nil
	}
}

// WithRegisterer registers the Puller's metrics with r (default: not
// registered).
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) error {
		if r == nil {
			return errors.New("registerer is nil")
		}
		o.registerer = r
		return nil
	}
}

// WithFsUsage sets how the use of the image filesystem is measured from the
// mount point the runtime reports (default StatfsUsage, which needs that
// path visible to this process: the agent mounts it from the host).
func WithFsUsage(f FsUsageFunc) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("filesystem usage function is nil")
		}
		o.fsUsage = f
		return nil
	}
}
