package prepuller

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"sandbox.io/injector/internal/testcri"
	"sandbox.io/injector/internal/testregistry"
)

const (
	testUser, testPassword = "puller", "s3cret"
	testConcurrency        = 2
)

// testRegistry is an in-memory registry on loopback, wrapped so that
// repositories under private/ need basic auth, manifests under flaky/
// answer 500 while failing is set, and concurrent manifest requests under
// public/ are counted.
type testRegistry struct {
	host    string // 127.0.0.1:port of the wrapped registry
	pushTo  string // 127.0.0.1:port of the same registry, unwrapped
	failing atomic.Bool
	// holdSlow holds manifest requests under slow/, each announced on
	// slowArrived, until their client gives up.
	holdSlow    atomic.Bool
	slowArrived chan struct{}
	// requests counts manifest requests per repository.
	requests sync.Map // repository -> *atomic.Int64

	mu           sync.Mutex
	inflight     int
	maxInflight  int
	gateArmed    bool
	boundReached bool
	gate         chan struct{} // closed once the concurrency probe is over
	gateOnce     sync.Once
}

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r := &testRegistry{gate: make(chan struct{}), slowArrived: make(chan struct{}, 16)}
	wrapped := httptest.NewServer(r.wrap(inner))
	t.Cleanup(wrapped.Close)
	push := httptest.NewServer(inner)
	t.Cleanup(push.Close)
	r.host = strings.TrimPrefix(wrapped.URL, "http://")
	r.pushTo = strings.TrimPrefix(push.URL, "http://")
	return r
}

func (r *testRegistry) count(repo string) int64 {
	v, _ := r.requests.LoadOrStore(repo, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func (r *testRegistry) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		path := strings.TrimPrefix(req.URL.Path, "/v2/")
		repo, _, isManifest := strings.Cut(path, "/manifests/")
		if strings.HasPrefix(path, "private/") || (repo == path && strings.HasPrefix(path, "private/")) {
			if u, p, ok := req.BasicAuth(); !ok || u != testUser || p != testPassword {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
		}
		if !isManifest {
			next.ServeHTTP(w, req)
			return
		}
		v, _ := r.requests.LoadOrStore(repo, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		if strings.HasPrefix(repo, "slow/") && r.holdSlow.Load() {
			r.slowArrived <- struct{}{}
			<-req.Context().Done() // held until the client gives up
			return
		}
		if strings.HasPrefix(repo, "flaky/") && r.failing.Load() {
			http.Error(w, "registry is having a bad day", http.StatusInternalServerError)
			return
		}
		if strings.HasPrefix(repo, "public/") {
			released := r.probe(req.Context())
			defer func() {
				r.mu.Lock()
				r.inflight--
				r.mu.Unlock()
			}()
			if !released {
				return
			}
		}
		next.ServeHTTP(w, req)
	})
}

// probe holds the first manifest requests until as many as the bound are
// in flight (proving pulls overlap), then half a second longer to let a
// request beyond the bound show up if the puller does not bound its pulls.
// A correct puller passes whatever the timing; an unbounded one is caught
// unless the machine is very slow. One that never overlaps pulls opens the
// gate only after 30 s, and fails on the maximum it reached.
func (r *testRegistry) probe(ctx context.Context) bool {
	r.mu.Lock()
	r.inflight++
	r.maxInflight = max(r.maxInflight, r.inflight)
	open := func() { r.gateOnce.Do(func() { close(r.gate) }) }
	if !r.gateArmed {
		r.gateArmed = true
		time.AfterFunc(30*time.Second, open)
	}
	switch {
	case r.inflight > testConcurrency:
		open()
	case r.inflight == testConcurrency && !r.boundReached:
		r.boundReached = true
		time.AfterFunc(500*time.Millisecond, open)
	}
	r.mu.Unlock()
	select {
	case <-r.gate:
		return true
	case <-ctx.Done():
		return false // the client gave up: it no longer counts as in flight
	}
}

// push writes a small random linux image to repo:tag and returns its
// reference on the wrapped registry.
func (r *testRegistry) push(t testing.TB, repoTag string) string {
	t.Helper()
	img := testregistry.RandomImage(t, 1024, 2)
	ref, err := name.ParseReference(r.pushTo + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return r.host + "/" + repoTag
}

// statusOf returns the status of ref (normalized name) in p.
func statusOf(t *testing.T, p *Puller, ref string) ImageStatus {
	t.Helper()
	for _, s := range p.Status() {
		if s.Ref == ref {
			return s
		}
	}
	t.Fatalf("no status for %s in %+v", ref, p.Status())
	return ImageStatus{}
}

// presentInRuntime asks the runtime itself, not the Puller.
func presentInRuntime(t *testing.T, c *testcri.Containerd, ref string) bool {
	t.Helper()
	resp, err := c.Images.ImageStatus(t.Context(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		t.Fatalf("CRI ImageStatus %s: %v", ref, err)
	}
	return resp.GetImage() != nil
}

func syncCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestSyncAgainstContainerd runs the Puller against a real containerd
// pulling from a loopback registry. The steps share the runtime and run in
// order.
func TestSyncAgainstContainerd(t *testing.T) {
	t.Parallel()
	reg := newTestRegistry(t)
	c := startContainerd(t, reg.host)

	var public []Image
	for _, n := range []string{"public/one:v1", "public/two:v1", "public/three:v1", "public/four:v1", "public/five:v1"} {
		public = append(public, Image{Ref: reg.push(t, n)})
	}
	flaky := Image{Ref: reg.push(t, "flaky/app:v1")}
	private := Image{Ref: reg.push(t, "private/app:v1")}

	clock := clocktesting.NewFakeClock(t0)
	full := atomic.Bool{}
	var mountpoints sync.Map
	promReg := prometheus.NewPedanticRegistry()
	p, err := New(c.Images,
		WithConcurrency(testConcurrency),
		WithBackoff(time.Minute, time.Hour, 0),
		WithClock(clock),
		WithRegisterer(promReg),
		WithDiskThreshold(99),
		WithFsUsage(func(mp string) (uint64, uint64, error) {
			mountpoints.Store(mp, true)
			used, capacity, err := StatfsUsage(mp)
			if full.Load() {
				used = capacity
			}
			return used, capacity, err
		}),
	)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("missing images are pulled, at most the bound at a time", func(t *testing.T) {
		if err := p.Sync(syncCtx(t), public); err != nil {
			t.Fatal(err)
		}
		for _, img := range public {
			if s := statusOf(t, p, img.Ref); s.State != StatePresent || s.ImageID == "" || s.Size == 0 {
				t.Errorf("status of %s = %+v, want present with an id and a size", img.Ref, s)
			}
			if !presentInRuntime(t, c, img.Ref) {
				t.Errorf("%s is not in the runtime after Sync", img.Ref)
			}
		}
		reg.mu.Lock()
		maxInflight := reg.maxInflight
		reg.mu.Unlock()
		if maxInflight != testConcurrency {
			t.Errorf("at most %d manifest requests were in flight at once, want exactly the bound %d", maxInflight, testConcurrency)
		}
		if got := testutil.ToFloat64(p.metrics.pulls.WithLabelValues(ResultSuccess)); got != 5 {
			t.Errorf("pulls_total{result=success} = %g, want 5", got)
		}
		if got := testutil.ToFloat64(p.metrics.present); got != 5 {
			t.Errorf("images_present = %g, want 5", got)
		}
		if got := testutil.ToFloat64(p.metrics.bytes); got <= 0 {
			t.Errorf("pulled_bytes_total = %g, want > 0", got)
		}
		var seen []string
		mountpoints.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
		if len(seen) == 0 || !strings.HasPrefix(seen[0], c.Root) {
			t.Errorf("image filesystem mount points read = %v, want one under containerd's root %s", seen, c.Root)
		}
	})

	t.Run("present images are not pulled again", func(t *testing.T) {
		if s := statusOf(t, p, public[0].Ref); s.State != StatePresent {
			t.Fatalf("precondition: %s is %s, want present", public[0].Ref, s.State)
		}
		before := reg.count("public/one")
		if err := p.Sync(syncCtx(t), public); err != nil {
			t.Fatal(err)
		}
		if after := reg.count("public/one"); after != before {
			t.Errorf("manifest requests for public/one went from %d to %d on a Sync with everything present", before, after)
		}
	})

	t.Run("a 5xx is retried after its backoff and recovers", func(t *testing.T) {
		reg.failing.Store(true)
		desired := []Image{public[0], flaky}
		if err := p.Sync(syncCtx(t), desired); err != nil {
			t.Fatal(err)
		}
		s := statusOf(t, p, flaky.Ref)
		if s.State != StateFailed || s.Attempts != 1 || !strings.Contains(s.LastError, "500") {
			t.Fatalf("status after a 500 = %+v, want failed once with the registry's 500", s)
		}
		if want := clock.Now().Add(time.Minute); !s.NextRetry.Equal(want) {
			t.Errorf("next retry = %s, want %s (the base backoff, no jitter)", s.NextRetry, want)
		}
		reg.failing.Store(false)

		before := reg.count("flaky/app")
		clock.SetTime(clock.Now().Add(59 * time.Second))
		if err := p.Sync(syncCtx(t), desired); err != nil {
			t.Fatal(err)
		}
		if after := reg.count("flaky/app"); after != before {
			t.Errorf("flaky/app was asked for %d times during its backoff, want 0", after-before)
		}
		if s := statusOf(t, p, flaky.Ref); s.State != StateFailed {
			t.Errorf("status during backoff = %+v, want still failed", s)
		}

		clock.SetTime(clock.Now().Add(time.Second))
		if err := p.Sync(syncCtx(t), desired); err != nil {
			t.Fatal(err)
		}
		if s := statusOf(t, p, flaky.Ref); s.State != StatePresent || s.Attempts != 0 || s.LastError != "" {
			t.Errorf("status after the backoff = %+v, want present with the failure forgotten", s)
		}
		if !presentInRuntime(t, c, flaky.Ref) {
			t.Errorf("%s is not in the runtime", flaky.Ref)
		}
		if got := testutil.ToFloat64(p.metrics.pulls.WithLabelValues(ResultFailure)); got != 1 {
			t.Errorf("pulls_total{result=failure} = %g, want 1", got)
		}
	})

	t.Run("a private image needs its pull secret", func(t *testing.T) {
		if err := p.Sync(syncCtx(t), []Image{private}); err != nil {
			t.Fatal(err)
		}
		s := statusOf(t, p, private.Ref)
		if s.State != StateFailed || !strings.Contains(s.LastError, "authorization failed") {
			t.Fatalf("status without credentials = %+v, want failed with the registry's authorization error", s)
		}
		if presentInRuntime(t, c, private.Ref) {
			t.Fatalf("%s is in the runtime without credentials", private.Ref)
		}

		auth, err := AuthFor(private.Ref, []*corev1.Secret{pullSecret(t, reg.host)})
		if err != nil {
			t.Fatal(err)
		}
		// New credentials are tried at once, without waiting for the backoff.
		if err := p.Sync(syncCtx(t), []Image{{Ref: private.Ref, Auth: auth}}); err != nil {
			t.Fatal(err)
		}
		if s := statusOf(t, p, private.Ref); s.State != StatePresent {
			t.Errorf("status with the pull secret = %+v, want present", s)
		}
		if !presentInRuntime(t, c, private.Ref) {
			t.Errorf("%s is not in the runtime", private.Ref)
		}
	})

	t.Run("an image removed from the runtime is pulled again", func(t *testing.T) {
		if _, err := c.Images.RemoveImage(t.Context(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: public[0].Ref}}); err != nil {
			t.Fatal(err)
		}
		if err := p.Sync(syncCtx(t), public); err != nil {
			t.Fatal(err)
		}
		if !presentInRuntime(t, c, public[0].Ref) {
			t.Errorf("%s was not pulled again after its removal", public[0].Ref)
		}
	})

	t.Run("pulls pause while the image filesystem is full, and resume", func(t *testing.T) {
		extra := Image{Ref: reg.push(t, "public/six:v1")}
		desired := []Image{public[0], extra}
		full.Store(true)
		if err := p.Sync(syncCtx(t), desired); err != nil {
			t.Fatal(err)
		}
		s := statusOf(t, p, extra.Ref)
		if s.State != StatePaused || !strings.Contains(s.LastError, "above the 99% threshold") {
			t.Errorf("status while full = %+v, want paused saying why", s)
		}
		if p.Paused() == "" || testutil.ToFloat64(p.metrics.paused) != 1 {
			t.Errorf("Paused() = %q, paused gauge = %g; want a reason and 1", p.Paused(), testutil.ToFloat64(p.metrics.paused))
		}
		if n := reg.count("public/six"); n != 0 || presentInRuntime(t, c, extra.Ref) {
			t.Errorf("public/six was asked for %d times while paused, want 0", n)
		}

		full.Store(false)
		if err := p.Sync(syncCtx(t), desired); err != nil {
			t.Fatal(err)
		}
		if s := statusOf(t, p, extra.Ref); s.State != StatePresent {
			t.Errorf("status once space is back = %+v, want present", s)
		}
		if p.Paused() != "" || testutil.ToFloat64(p.metrics.paused) != 0 {
			t.Errorf("Paused() = %q after space came back, want \"\"", p.Paused())
		}
	})

	t.Run("a moved tag is pulled again once its refresh is due", func(t *testing.T) {
		desired := public[:1]
		old := statusOf(t, p, desired[0].Ref)
		if old.State != StatePresent {
			t.Fatalf("precondition: %s is %s, want present", desired[0].Ref, old.State)
		}
		reg.push(t, "public/one:v1") // new content under the same tag
		if err := p.Sync(syncCtx(t), desired); err != nil {
			t.Fatal(err)
		}
		if s := statusOf(t, p, desired[0].Ref); s.ImageID != old.ImageID {
			t.Fatalf("the tag was followed before its refresh was due: %s -> %s", old.ImageID, s.ImageID)
		}
		clock.SetTime(old.LastPulled.Add(DefaultRefresh))
		if err := p.Sync(syncCtx(t), desired); err != nil {
			t.Fatal(err)
		}
		s := statusOf(t, p, desired[0].Ref)
		if s.State != StatePresent || s.ImageID == old.ImageID {
			t.Errorf("status after the refresh = %+v, want present with an id other than %s", s, old.ImageID)
		}
		resp, err := c.Images.ImageStatus(t.Context(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: desired[0].Ref}})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetImage().GetId(); got != s.ImageID {
			t.Errorf("the runtime's %s is %s, want the new %s", desired[0].Ref, got, s.ImageID)
		}
		if got := p.Summary().String(); !strings.HasPrefix(got, "present 1/1") {
			t.Errorf("Summary() = %q, want it to start with present 1/1", got)
		}
	})

	t.Run("a cancelled Sync is not a failure", func(t *testing.T) {
		slow := Image{Ref: reg.push(t, "slow/app:v1")}
		failures := testutil.ToFloat64(p.metrics.pulls.WithLabelValues(ResultFailure))
		reg.holdSlow.Store(true)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- p.Sync(ctx, []Image{slow}) }()
		select {
		case <-reg.slowArrived:
		case err := <-done:
			t.Fatalf("Sync returned before its pull reached the registry: %v", err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Sync after cancel = %v, want context.Canceled", err)
		}
		if s := statusOf(t, p, slow.Ref); s.State != StateMissing || s.Attempts != 0 {
			t.Errorf("status after a cancelled pull = %+v, want missing with no attempt counted", s)
		}
		if got := testutil.ToFloat64(p.metrics.pulls.WithLabelValues(ResultFailure)); got != failures {
			t.Errorf("pulls_total{result=failure} went from %g to %g on a cancelled pull", failures, got)
		}
		reg.holdSlow.Store(false)
		if err := p.Sync(syncCtx(t), []Image{slow}); err != nil {
			t.Fatal(err)
		}
		if s := statusOf(t, p, slow.Ref); s.State != StatePresent {
			t.Errorf("status on the next Sync = %+v, want present at once", s)
		}
	})

	t.Run("metrics are registered and consistent", func(t *testing.T) {
		n, err := testutil.GatherAndCount(promReg, "sandbox_prepuller_images_desired", "sandbox_prepuller_pulls_total")
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Errorf("gathered %d series of images_desired and pulls_total, want 3", n)
		}
		if got := testutil.ToFloat64(p.metrics.desired); got != 1 {
			t.Errorf("images_desired = %g, want 1 (the last Sync's set)", got)
		}
	})
}

func pullSecret(t *testing.T, host string) *corev1.Secret {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: "ns"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: raw},
	}
}
