package webhook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/yaml"

	"sandbox.io/injector/api/v1alpha1"
)

// ourPaths are the only places a mutation may write.
var ourPaths = regexp.MustCompile(`^(/spec/volumes(/-|/\d+)?|/spec/initContainers(/\d+)?|` +
	`/spec/containers/\d+/(command|args|volumeMounts(/-|/\d+)?|ports(/-|/\d+)?|readinessProbe)|` +
	`/metadata/annotations(/sandbox\.io~1status)?)(/.*)?$`)

// FuzzMutate hunts for panics and broken patches in decide -> mutate ->
// patch, from the golden inputs. Run it with
//
//	go test ./webhook -run '^$' -fuzz FuzzMutate -fuzztime 60s
//
// For every pod it checks that: nothing panics; the patch applies and the
// result decodes into a Pod; the patch and a diff of the whole pod touch
// only our paths; mutating the mutated pod adds nothing; a pod that did not
// opt in is not mutated. Both injection forms are fuzzed.
func FuzzMutate(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/mutate/*.yaml")
	for _, in := range inputs {
		if strings.HasSuffix(in, ".mutated.yaml") {
			continue
		}
		raw, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		docs := strings.Split(string(raw), "\n---\n")
		js, err := yaml.YAMLToJSON([]byte(docs[len(docs)-1]))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(js, "", "", "")
		f.Add(js, v1alpha1.InjectEnabled, "wrap", "app,helper")
	}
	cfg := testConfig(f)
	f.Fuzz(func(t *testing.T, podJSON []byte, nsLabel, mode, containers string) {
		pod, err := DecodePod(podJSON)
		if err != nil {
			return
		}
		// Steer the fuzzer's strings into the annotations the mutation reads.
		if mode != "" || containers != "" {
			obj := map[string]any{}
			if json.Unmarshal(podJSON, &obj) != nil {
				return
			}
			meta, _ := obj["metadata"].(map[string]any)
			if meta == nil {
				meta = map[string]any{}
				obj["metadata"] = meta
			}
			ann, _ := meta["annotations"].(map[string]any)
			if ann == nil {
				ann = map[string]any{}
				meta["annotations"] = ann
			}
			if mode != "" {
				ann[v1alpha1.AnnotationMode] = mode
			}
			if containers != "" {
				ann[v1alpha1.AnnotationContainers] = containers
			}
			if podJSON, err = json.Marshal(obj); err != nil {
				return
			}
			if pod, err = DecodePod(podJSON); err != nil {
				return
			}
		}
		nsLabels := map[string]string{}
		if nsLabel != "" {
			nsLabels[v1alpha1.LabelInject] = nsLabel
		}
		d, err := Decide(pod, "fuzz", nsLabels, cfg)
		if err != nil || !d.Inject {
			if _, asked := pod.Annotations[v1alpha1.AnnotationInject]; !asked && nsLabel != v1alpha1.InjectEnabled && d.Inject {
				t.Fatal("a pod that did not opt in is to be injected")
			}
			return
		}
		plan, err := NewPlan(pod, cfg)
		if err != nil {
			return // refusals are fine; panics are not
		}
		// Both injection forms, chosen by the input's length.
		if len(podJSON)%2 == 1 {
			plan.Method = v1alpha1.MethodImageVolume
		}
		res, err := plan.Patch(testLookups)
		if err != nil {
			return
		}
		if res.AlreadyInjected {
			return
		}
		for _, op := range res.Patch {
			if !ourPaths.MatchString(op.Path) {
				t.Fatalf("patch writes outside our paths: %s %s", op.Operation, op.Path)
			}
		}
		mutated, _, err := applyPatch(podJSON, res.Patch)
		if err != nil {
			t.Fatalf("patch does not apply: %v", err)
		}
		// Cross-check with a diff of the whole pod.
		diff, err := jsonpatch.CreatePatch(podJSON, mutated)
		if err != nil {
			t.Fatalf("diffing: %v", err)
		}
		for _, op := range diff {
			if !ourPaths.MatchString(op.Path) {
				t.Fatalf("the mutated pod differs outside our paths: %s %s", op.Operation, op.Path)
			}
		}
		again, err := DecodePod(mutated)
		if err != nil {
			t.Fatalf("decoding mutated pod: %v", err)
		}
		plan2, err := NewPlan(again, cfg)
		if err != nil {
			t.Fatalf("planning the mutated pod: %v", err)
		}
		plan2.Method = plan.Method
		res2, err := plan2.Patch(testLookups)
		if err != nil {
			t.Fatalf("mutating the mutated pod: %v", err)
		}
		if !res2.AlreadyInjected || len(res2.Patch) > 0 {
			t.Fatalf("mutating the mutated pod adds %d operations", len(res2.Patch))
		}
	})
}
