package prepuller

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestNormalize(t *testing.T) {
	t.Parallel()
	const dgst = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		ref      string
		want     string
		byDigest bool
		wantErr  bool
	}{
		{ref: "busybox", want: "docker.io/library/busybox:latest"},
		{ref: "docker.io/library/busybox:1.36", want: "docker.io/library/busybox:1.36"},
		{ref: "index.docker.io/team/app:v1", want: "docker.io/team/app:v1"},
		{ref: "127.0.0.1:5000/app", want: "127.0.0.1:5000/app:latest"},
		{ref: "127.0.0.1:5000/a/b@" + dgst, want: "127.0.0.1:5000/a/b@" + dgst, byDigest: true},
		{ref: "Not A Ref", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			t.Parallel()
			got, err := normalize(tc.ref)
			if (err != nil) != tc.wantErr {
				t.Fatalf("normalize(%q) error = %v, want error %v", tc.ref, err, tc.wantErr)
			}
			if diff := cmp.Diff(normalized{name: tc.want, byDigest: tc.byDigest}, got, cmp.AllowUnexported(normalized{})); !tc.wantErr && diff != "" {
				t.Errorf("normalize(%q) (-want +got):\n%s", tc.ref, diff)
			}
		})
	}
}

// row is the part of an entry a plan test looks at.
type row struct {
	Name     string
	State    State
	Attempts int
	Pull     bool
}

func TestPlan(t *testing.T) {
	t.Parallel()
	img := func(id string, names ...string) *runtimeapi.Image {
		return &runtimeapi.Image{Id: id, RepoTags: names, Size: 100}
	}
	const (
		a   = "127.0.0.1:5000/a:latest"
		b   = "127.0.0.1:5000/b:v1"
		dig = "127.0.0.1:5000/d@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	)
	tests := []struct {
		name    string
		desired []string
		present []*runtimeapi.Image
		auth    *AuthConfig // of every desired image
		known   []entry
		now     time.Time
		want    []row
	}{{
		name:    "missing images are pulled, present ones are not",
		desired: []string{a, b},
		present: []*runtimeapi.Image{img("sha256:1", a)},
		now:     t0,
		want:    []row{{a, StatePresent, 0, false}, {b, StateMissing, 0, true}},
	}, {
		name:    "duplicates and short names collapse to one entry",
		desired: []string{"127.0.0.1:5000/a", a, "127.0.0.1:5000/a:latest"},
		now:     t0,
		want:    []row{{a, StateMissing, 0, true}},
	}, {
		name:    "a failed image waits for its backoff",
		desired: []string{a},
		known:   []entry{{ImageStatus: ImageStatus{Name: a, State: StateFailed, Attempts: 2, NextRetry: t0.Add(time.Second)}}},
		now:     t0,
		want:    []row{{a, StateFailed, 2, false}},
	}, {
		name:    "a failed image with new credentials is pulled at once",
		desired: []string{a},
		auth:    &AuthConfig{Username: "u", Password: "p"},
		known:   []entry{{ImageStatus: ImageStatus{Name: a, State: StateFailed, Attempts: 2, NextRetry: t0.Add(time.Hour)}}},
		now:     t0,
		want:    []row{{a, StateFailed, 2, true}},
	}, {
		name:    "a failed image is pulled again once its backoff expired",
		desired: []string{a},
		known:   []entry{{ImageStatus: ImageStatus{Name: a, State: StateFailed, Attempts: 2, NextRetry: t0}}},
		now:     t0,
		want:    []row{{a, StateFailed, 2, true}},
	}, {
		name:    "a failed image someone else pulled is present and its failures forgotten",
		desired: []string{a},
		present: []*runtimeapi.Image{img("sha256:1", a)},
		known:   []entry{{ImageStatus: ImageStatus{Name: a, State: StateFailed, Attempts: 3, NextRetry: t0.Add(time.Hour)}}},
		now:     t0,
		want:    []row{{a, StatePresent, 0, false}},
	}, {
		name:    "an image removed by garbage collection is pulled again",
		desired: []string{a},
		known:   []entry{{ImageStatus: ImageStatus{Name: a, State: StatePresent, ImageID: "sha256:1", LastPulled: t0}}},
		now:     t0.Add(time.Minute),
		want:    []row{{a, StateMissing, 0, true}},
	}, {
		name:    "a tag is pulled again once the refresh interval passed",
		desired: []string{a, b},
		present: []*runtimeapi.Image{img("sha256:1", a), img("sha256:2", b)},
		known: []entry{
			{ImageStatus: ImageStatus{Name: a, State: StatePresent, ImageID: "sha256:1", LastPulled: t0.Add(-time.Hour)}},
			{ImageStatus: ImageStatus{Name: b, State: StatePresent, ImageID: "sha256:2", LastPulled: t0.Add(-time.Hour + time.Second)}},
		},
		now:  t0,
		want: []row{{a, StatePresent, 0, true}, {b, StatePresent, 0, false}},
	}, {
		name:    "an image first seen present is trusted for a full refresh interval",
		desired: []string{a},
		present: []*runtimeapi.Image{img("sha256:1", a)},
		now:     t0,
		want:    []row{{a, StatePresent, 0, false}},
	}, {
		name:    "a digest never needs a refresh",
		desired: []string{dig},
		present: []*runtimeapi.Image{{Id: "sha256:3", RepoDigests: []string{dig}}},
		known:   []entry{{ImageStatus: ImageStatus{Name: dig, State: StatePresent, ImageID: "sha256:3", LastPulled: t0.Add(-24 * time.Hour)}}},
		now:     t0,
		want:    []row{{dig, StatePresent, 0, false}},
	}, {
		name:    "a paused image is tried again",
		desired: []string{a},
		known:   []entry{{ImageStatus: ImageStatus{Name: a, State: StatePaused, LastError: "full"}}},
		now:     t0,
		want:    []row{{a, StatePaused, 0, true}},
	}, {
		name:    "an invalid reference is failed and never pulled",
		desired: []string{"UPPER/case"},
		now:     t0,
		want:    []row{{"", StateFailed, 0, false}},
	}, {
		name:    "images no longer desired are forgotten",
		desired: nil,
		known:   []entry{{ImageStatus: ImageStatus{Name: a, State: StateFailed, Attempts: 1}}},
		now:     t0,
		want:    nil,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			known := map[string]*entry{}
			for i := range tc.known {
				e := tc.known[i]
				known[e.Name] = &e
			}
			var desired []Image
			for _, r := range tc.desired {
				desired = append(desired, Image{Ref: r, Auth: tc.auth})
			}
			entries, pull := plan(planInput{
				now: tc.now, refresh: time.Hour, desired: desired,
				present: newPresentSet(tc.present), known: known,
			})
			pulled := map[*entry]bool{}
			for _, e := range pull {
				pulled[e] = true
			}
			var got []row
			for _, e := range entries {
				got = append(got, row{e.Name, e.State, e.Attempts, pulled[e]})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBackoff: a failing image waits the base, then twice as long after
// each failure up to the cap, on the Puller's clock; jitter only lengthens
// a delay, by at most its fraction.
func TestBackoff(t *testing.T) {
	t.Parallel()
	const base, max = 10 * time.Second, 5 * time.Minute
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	delays := func(jitter float64, n int) []time.Duration {
		c := clocktesting.NewFakeClock(t0)
		p, err := New(runtimeapi.NewImageServiceClient(nil), WithBackoff(base, max, jitter), WithClock(c))
		if err != nil {
			t.Fatal(err)
		}
		var out []time.Duration
		for range n {
			p.backoff.Next("img", c.Now())
			d := p.backoff.Get("img")
			out = append(out, d)
			c.Step(d)
		}
		return out
	}
	want := []time.Duration{base, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, max, max}
	if diff := cmp.Diff(want, delays(0, len(want))); diff != "" {
		t.Errorf("delays without jitter (-want +got):\n%s", diff)
	}
	if d := delays(0.2, 1)[0]; d < base || d > base+base/5 {
		t.Errorf("first delay with 20%% jitter %s, want in [%s, %s]", d, base, base+base/5)
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []Option
		wantErr string
	}{
		{name: "defaults"},
		{name: "all valid", opts: []Option{WithConcurrency(4), WithBackoff(time.Second, time.Minute, 0.1), WithDiskThreshold(100), WithRefresh(0)}},
		{name: "zero concurrency", opts: []Option{WithConcurrency(0)}, wantErr: "concurrency 0 is below 1"},
		{name: "max below base", opts: []Option{WithBackoff(time.Minute, time.Second, 0)}, wantErr: "backoff max 1s is below the base 1m0s"},
		{name: "jitter of one", opts: []Option{WithBackoff(time.Second, time.Second, 1)}, wantErr: "backoff jitter 1 is not in [0, 1)"},
		{name: "threshold zero", opts: []Option{WithDiskThreshold(0)}, wantErr: "disk threshold 0% is not in (0, 100]"},
		{name: "negative refresh", opts: []Option{WithRefresh(-time.Second)}, wantErr: "refresh interval -1s is negative"},
		{name: "nil clock", opts: []Option{WithClock(nil)}, wantErr: "clock is nil"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(runtimeapi.NewImageServiceClient(nil), tc.opts...)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && !strings.Contains(got, tc.wantErr) {
				t.Errorf("New() error = %q, want one containing %q", got, tc.wantErr)
			}
		})
	}
}

func TestSummaryString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    Summary
		want string
	}{
		{"nothing desired", Summary{}, "present 0/0"},
		{"all present", Summary{Desired: 3, Present: 3}, "present 3/3"},
		{"mixed", Summary{Desired: 7, Present: 3, Pulling: 1, Missing: 1, Failed: 1, Paused: 1, FirstFailure: "r: 500"}, "present 3/7, pulling 1, missing 1, failed 1, paused 1 (r: 500)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.s.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSyncRuntimeUnreachable(t *testing.T) {
	t.Parallel()
	conn, err := Dial(filepath.Join(t.TempDir(), "none.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	p, err := New(runtimeapi.NewImageServiceClient(conn))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err = p.Sync(ctx, []Image{{Ref: "127.0.0.1:5000/a"}})
	if err == nil || !strings.Contains(err.Error(), "listing images through the CRI") {
		t.Fatalf("Sync against no runtime = %v, want an error saying the listing failed", err)
	}
	if got := p.Status(); len(got) != 0 {
		t.Errorf("Status after a Sync that could not run = %+v, want empty", got)
	}
}
