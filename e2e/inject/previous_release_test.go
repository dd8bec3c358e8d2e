package inject

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// previousRelease is the commit whose chart and images
// TestUpgradeFromPreviousRelease installs before it upgrades to the working
// tree: the first commit of main whose stopping webhook pods wait for the
// API server to close its connections (--drain-timeout). From an older one
// the upgrade can lose an admission as an old pod stops: one written on a
// keep-alive connection the pod closes (2 of 600 in one run of eight;
// TestRolloutLosesNoAdmission, webhook), or, before --shutdown-delay, the
// admissions the stopping pods refused. Its claim controller also reads a
// claim's pod from the API server where its cache may lag
// (TestBoundClaimMeetsALaggingCache, TestPendingClaimSkipsAPodItLetGo).
// Move it to the last release tag (git tag vX.Y.Z, README "Upgrading") once
// there is one.
const previousRelease = "7eb8aa1"

// prevRelease is the previous release as the test installs it.
type prevRelease struct {
	commit string // the full commit hash
	chart  string // its chart directory, in a git worktree of that commit
	tag    string // the tag of its images in the local registry
}

// projectImages are the images a release's chart installs.
var projectImages = []string{"sandbox-runner", "sandbox-webhook", "sandbox-agent"}

const skipBanner = "################################################################"

// previousRelease checks out previousRelease in a git worktree under _out
// (removed when the test ends) and pushes its images, built by its own
// Makefile from its own source, to the local registry with the tag
// prev-<commit>; images already there under that tag are reused. Without
// the commit (a shallow clone), the test is skipped, loudly.
func (x *env) previousRelease(t *testing.T) prevRelease {
	t.Helper()
	git := func(ctx context.Context, args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", x.root}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	commit, err := git(t.Context(), "rev-parse", "--verify", "--quiet", previousRelease+"^{commit}")
	if err != nil {
		msg := fmt.Sprintf("SKIPPING THE UPGRADE TEST: the previous release %s is not in this clone (git rev-parse: %v); "+
			"a shallow clone lacks it: fetch the whole history (git fetch --unshallow)", previousRelease, err)
		fmt.Fprintf(os.Stderr, "\n%s\n## %s\n%s\n\n", skipBanner, msg, skipBanner)
		t.Skip(msg)
	}
	short := commit[:7]
	p := prevRelease{commit: commit, tag: "prev-" + short}
	dir := filepath.Join(x.root, "_out", "prev-"+short)
	// A worktree an interrupted run left behind goes first.
	_, _ = git(t.Context(), "worktree", "remove", "--force", dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	_, _ = git(t.Context(), "worktree", "prune")
	if out, err := git(t.Context(), "worktree", "add", "--detach", dir, commit); err != nil {
		t.Fatalf("checking out the previous release %s: %v\n%s", short, err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := git(ctx, "worktree", "remove", "--force", dir); err != nil {
			t.Errorf("removing the worktree of the previous release: %v\n%s", err, out)
		}
	})
	p.chart = filepath.Join(dir, "charts", "sandbox-injector")
	missing := x.missingImages(t.Context(), p.tag)
	if len(missing) == 0 {
		t.Logf("previous release %s: its images are in the registry with tag %s, reused", short, p.tag)
		return p
	}
	t.Logf("previous release %s: building %s with its own Makefile (tag %s)", short, strings.Join(missing, ", "), p.tag)
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	nodeIP, _, _ := strings.Cut(x.registry, ":")
	// Its own bin directory: the tree's images are already pushed, and the
	// binaries the shared bin holds stay the working tree's.
	cmd := exec.CommandContext(ctx, "make", "-C", dir, "--no-print-directory", "images",
		"IMAGE_PLATFORMS="+runtime.GOOS+"/"+runtime.GOARCH, "IMAGE_TAG="+p.tag,
		"BIN="+filepath.Join(dir, "_out", "bin"), "CLUSTER_NODE_IP="+nodeIP)
	// Not the variables of the make that runs this test.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" && k != "VERSION" && k != "IMAGE_TAG" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the images of the previous release %s: %v\n%s", short, err, out)
	}
	if missing := x.missingImages(t.Context(), p.tag); len(missing) > 0 {
		t.Fatalf("the previous release's make images pushed no %s:%s", strings.Join(missing, ", "), p.tag)
	}
	t.Logf("previous release %s: images built and pushed in %s", short, time.Since(start).Round(time.Second))
	return p
}

// missingImages are the project images the local registry has no manifest
// of under tag.
func (x *env) missingImages(ctx context.Context, tag string) []string {
	hc := &http.Client{Timeout: 10 * time.Second}
	var missing []string
	for _, img := range projectImages {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, fmt.Sprintf("http://%s/v2/%s/manifests/%s", x.registry, img, tag), nil)
		if err != nil {
			missing = append(missing, img)
			continue
		}
		req.Header.Set("Accept", strings.Join([]string{
			"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
			"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json",
		}, ", "))
		resp, err := hc.Do(req)
		if err != nil {
			missing = append(missing, img)
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			missing = append(missing, img)
		}
	}
	return missing
}
