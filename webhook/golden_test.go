package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sandbox.io/injector/internal/claimkey"
	"slices"
	"strings"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"sandbox.io/injector/api/v1alpha1"
)

// refreshGolden rewrites the golden files: REFRESH_GOLDEN=true go test ./webhook/...
var refreshGolden = os.Getenv("REFRESH_GOLDEN") == "true"

// testLookups is the registry the golden cases see: fixed image commands.
var testLookups = map[string]Lookup{
	"images.test/app:v1":     {Command: ImageCommand{Entrypoint: []string{"/app"}, Cmd: []string{"--serve", "--port=8080"}}},
	"images.test/cmdonly:v1": {Command: ImageCommand{Cmd: []string{"/bin/sh", "-c", "sleep 3600"}}},
	"images.test/sidecar:v1": {Command: ImageCommand{Entrypoint: []string{"/sidecar"}}},
	"images.test/broken:v1":  {Err: errors.New("GET https://images.test/v2/broken/manifests/v1: unexpected status code 500")},
	"images.test/empty:v1":   {},
}

func testConfig(t testing.TB) *Config {
	t.Helper()
	cfg, err := Config{
		RunnerImage:      "images.test/sandbox-runner:v0.1.0",
		RunnerVersion:    "v0.1.0",
		ReleaseNamespace: "sandbox-system",
		ClaimKeys:        claimkey.NewRing(claimkey.Keys{Current: claimkey.Key("golden-claim-key-0123456789abcdef")}),
		NewNonce:         func() (string, error) { return "00112233445566778899aabbccddeeff", nil },
	}.Complete()
	if err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// goldenCase is one input of testdata/mutate: an optional Namespace
// document, then the Pod.
type goldenCase struct {
	nsName   string
	nsLabels map[string]string
	podJSON  []byte
}

func readCase(t *testing.T, path string) goldenCase {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := goldenCase{nsName: "default"}
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string            `json:"name"`
				Namespace string            `json:"namespace"`
				Labels    map[string]string `json:"labels"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(js, &meta); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch meta.Kind {
		case "Namespace":
			c.nsName, c.nsLabels = meta.Metadata.Name, meta.Metadata.Labels
		case "Pod":
			c.podJSON = js
			if meta.Metadata.Namespace != "" {
				c.nsName = meta.Metadata.Namespace
			}
		default:
			t.Fatalf("%s: unexpected kind %q", path, meta.Kind)
		}
	}
	if c.podJSON == nil {
		t.Fatalf("%s: no Pod document", path)
	}
	return c
}

// admit runs the same steps as the handler, with testLookups as the
// registry. It returns the outcome as text for skips and refusals, or the
// result of the mutation.
func admit(cfg *Config, ns string, nsLabels map[string]string, podJSON []byte, method string) (string, *Result, error) {
	pod, err := DecodePod(podJSON)
	if err != nil {
		return "", nil, err
	}
	d, err := Decide(pod, ns, nsLabels, cfg)
	if err != nil {
		return "refused: " + err.Error() + "\n", nil, nil
	}
	if !d.Inject {
		return outcome("skipped: "+d.Reason, d.Warnings), nil, nil
	}
	plan, err := NewPlan(pod, cfg)
	if errors.Is(err, ErrRefused) {
		return "refused: " + err.Error() + "\n", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	plan.Method = method
	res, err := plan.Patch(testLookups)
	if errors.Is(err, ErrRefused) {
		return "refused: " + err.Error() + "\n", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	res.Warnings = append(d.Warnings, res.Warnings...)
	if res.AlreadyInjected {
		return outcome("skipped: already injected", res.Warnings), nil, nil
	}
	return "", res, nil
}

func outcome(head string, warnings []string) string {
	var b strings.Builder
	b.WriteString(head + "\n")
	for _, w := range warnings {
		b.WriteString("warning: " + w + "\n")
	}
	return b.String()
}

// checkEncodePatch asserts that EncodePatch, which the handler answers
// with, writes exactly what json.Marshal does.
func checkEncodePatch(t *testing.T, ops []jsonpatch.Operation) {
	t.Helper()
	want, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	got, err := EncodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("EncodePatch differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

// applyPatch applies ops to doc the way the API server does, and decodes
// the result strictly, so that a patch producing unknown fields fails.
func applyPatch(doc []byte, ops []jsonpatch.Operation) ([]byte, *corev1.Pod, error) {
	raw, err := json.Marshal(ops)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding patch: %w", err)
	}
	p, err := jsonpatchapply.DecodePatch(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("decoding patch: %w", err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("applying patch: %w", err)
	}
	// A pod that decoded strictly before must decode strictly after: the
	// patch adds no field the API does not know.
	var pod corev1.Pod
	if yaml.UnmarshalStrict(doc, &corev1.Pod{}) == nil {
		if err := yaml.UnmarshalStrict(out, &pod); err != nil {
			return nil, nil, fmt.Errorf("strict decoding of mutated pod: %w", err)
		}
	} else if err := json.Unmarshal(out, &pod); err != nil {
		return nil, nil, fmt.Errorf("decoding mutated pod: %w", err)
	}
	return out, &pod, nil
}

func TestGolden(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	inputs, err := filepath.Glob("testdata/mutate/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var used []string
	for _, in := range inputs {
		if strings.HasSuffix(in, ".mutated.yaml") {
			continue
		}
		used = append(used, in)
		for _, method := range []string{v1alpha1.MethodCopy, v1alpha1.MethodImageVolume} {
			// Copy-form outputs are <case>.patch.json and <case>.mutated.yaml;
			// image-volume ones carry .imagevolume before the extension.
			base := strings.TrimSuffix(in, ".yaml")
			name := filepath.Base(base)
			if method == v1alpha1.MethodImageVolume {
				base += ".imagevolume"
				name += "/imageVolume"
			}
			t.Run(name, func(t *testing.T) {
				c := readCase(t, in)
				text, res, err := admit(cfg, c.nsName, c.nsLabels, c.podJSON, method)
				if err != nil {
					t.Fatal(err)
				}
				if res == nil {
					// Skips and refusals do not depend on the method.
					if method == v1alpha1.MethodCopy {
						used = append(used, base+".result.txt")
						checkGolden(t, base+".result.txt", []byte(text))
					}
					return
				}
				patch, err := json.MarshalIndent(res.Patch, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				checkEncodePatch(t, res.Patch)
				mutated, pod, err := applyPatch(c.podJSON, res.Patch)
				if err != nil {
					t.Fatal(err)
				}
				checkProbesKept(t, c.podJSON, pod)
				mutatedYAML, err := yaml.JSONToYAML(mutated)
				if err != nil {
					t.Fatal(err)
				}
				used = append(used, base+".patch.json", base+".mutated.yaml")
				checkGolden(t, base+".patch.json", append(patch, '\n'))
				checkGolden(t, base+".mutated.yaml", mutatedYAML)
				if len(res.Warnings) > 0 && method == v1alpha1.MethodCopy {
					used = append(used, base+".result.txt")
					checkGolden(t, base+".result.txt", []byte(outcome("injected", res.Warnings)))
				}

				// Idempotence: the mutated pod is left as it is.
				again, res2, err := admit(cfg, c.nsName, c.nsLabels, mutated, method)
				if err != nil {
					t.Fatal(err)
				}
				if res2 != nil || !strings.HasPrefix(again, "skipped: already injected") {
					t.Errorf("second admission of the mutated pod: %q, %+v; want skipped: already injected", again, res2)
				}
				checkInvariants(t, pod, method)
			})
		}
	}
	t.Run("no stale golden files", func(t *testing.T) {
		all, err := filepath.Glob("testdata/mutate/*")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range all {
			if !slices.Contains(used, f) {
				t.Errorf("stale golden file %s: no case produces it (delete it, or REFRESH_GOLDEN=true)", f)
			}
		}
	})
}

// checkInvariants asserts what every injected pod must satisfy.
func checkInvariants(t *testing.T, pod *corev1.Pod, method string) {
	t.Helper()
	hasInit := len(pod.Spec.InitContainers) > 0 && pod.Spec.InitContainers[0].Name == InitContainerName
	switch {
	case method == v1alpha1.MethodImageVolume:
		if slices.ContainsFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == InitContainerName }) {
			t.Errorf("image-volume form has the copy form's init container")
		}
		if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == VolumeName && v.Image != nil }) {
			t.Errorf("image-volume form has no image volume %s", VolumeName)
		}
	case !hasInit:
		t.Errorf("first init container is not %s", InitContainerName)
	default:
		sc := pod.Spec.InitContainers[0].SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
			sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("init container security context is not restricted: %+v", sc)
		}
	}
	names := map[string]bool{}
	numbers := map[int32]string{}
	for _, c := range pod.Spec.Containers {
		wrapped := len(c.Command) > 0 && c.Command[0] == RunnerPath
		for _, p := range c.Ports {
			if len(p.Name) > 15 {
				t.Errorf("container %s: port name %q is longer than 15 characters", c.Name, p.Name)
			}
			if p.Name != "" && names[p.Name] {
				t.Errorf("port name %q used twice", p.Name)
			}
			names[p.Name] = true
			if other, ok := numbers[p.ContainerPort]; ok {
				t.Errorf("port %d used by %s and %s", p.ContainerPort, other, c.Name)
			}
			numbers[p.ContainerPort] = c.Name
		}
		if !wrapped {
			continue
		}
		ro := false
		for _, m := range c.VolumeMounts {
			if m.Name == VolumeName {
				ro = m.ReadOnly
			}
		}
		if !ro {
			t.Errorf("container %s: runner volume is not mounted read-only", c.Name)
		}
		for _, m := range c.VolumeMounts {
			if m.Name == VolumeName && (m.SubPath != "") != (method == v1alpha1.MethodImageVolume) {
				t.Errorf("container %s: runner mount subPath %q with method %s", c.Name, m.SubPath, method)
			}
		}
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if refreshGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (REFRESH_GOLDEN=true creates it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; REFRESH_GOLDEN=true to accept):\n%s", path, diff)
	}
}

// checkProbesKept fails when a container's own liveness, readiness or
// startup probe was changed or dropped: they are never touched.
func checkProbesKept(t *testing.T, orig []byte, mutated *corev1.Pod) {
	t.Helper()
	var before corev1.Pod
	if err := json.Unmarshal(orig, &before); err != nil {
		t.Fatal(err)
	}
	for i, c := range before.Spec.Containers {
		m := mutated.Spec.Containers[i]
		for _, pr := range []struct {
			name        string
			orig, after *corev1.Probe
		}{{"livenessProbe", c.LivenessProbe, m.LivenessProbe}, {"readinessProbe", c.ReadinessProbe, m.ReadinessProbe}, {"startupProbe", c.StartupProbe, m.StartupProbe}} {
			if pr.orig != nil {
				if diff := cmp.Diff(pr.orig, pr.after); diff != "" {
					t.Errorf("container %s: its own %s changed (-orig +mutated):\n%s", c.Name, pr.name, diff)
				}
			}
		}
	}
}
