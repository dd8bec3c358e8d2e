package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/claim/controller"
	"sandbox.io/injector/internal/claimtest"
	"sandbox.io/injector/internal/kubescheme"
	"sandbox.io/injector/internal/testenv"
)

// TestObjectsOfThePreviousRelease: an upgrade applies the new CRDs over
// objects the previous release wrote (testdata/previous-release: its CRDs,
// a pool without podsPerNode whose status still holds the per-node entries
// of that release's agents, a pending claim). They still read, the new
// controller reconciles them (the pool's status written, the claim bound
// to the pool's default one warm pod per node), and kubectl's printer
// columns work on them (a Table request, as kubectl get sends).
func TestObjectsOfThePreviousRelease(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testenv.Start(t, &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("testdata", "previous-release", "crds")},
		ErrorIfCRDPathMissing: true,
	})
	scheme, err := kubescheme.New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	e := claimtest.Attach(t, cfg, c)
	ns := e.Namespace()
	e.Node("node-a")
	ctx := context.Background()

	// The previous release's objects, written under its CRDs.
	raw, err := os.ReadFile(filepath.Join("testdata", "previous-release", "objects.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if len(u.Object) == 0 {
			continue
		}
		u.SetNamespace(ns)
		status, hasStatus := u.Object["status"]
		if err := c.Create(ctx, &u); err != nil {
			t.Fatalf("creating %s %s as the previous release: %v", u.GetKind(), u.GetName(), err)
		}
		if hasStatus {
			u.Object["status"] = status
			if err := c.Status().Update(ctx, &u); err != nil {
				t.Fatalf("writing the status of %s %s as the previous release: %v", u.GetKind(), u.GetName(), err)
			}
		}
	}

	// The upgrade: the chart's CRDs over them (kubectl apply --server-side
	// -f charts/sandbox-injector/crds/).
	if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join(root, "charts", "sandbox-injector", "crds")}, ErrorIfPathMissing: true,
	}); err != nil {
		t.Fatalf("applying the chart's CRDs: %v", err)
	}

	// They read, with the defaults the new release gives what they lack.
	var p v1alpha1.SandboxPool
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "legacy"}, &p); err != nil {
		t.Fatalf("reading the previous release's pool: %v", err)
	}
	// Unset, it reads as the CRD's default (applied on read, too).
	if p.Spec.WarmPodsPerNode() != 1 {
		t.Errorf("podsPerNode %d, want the default 1", p.Spec.WarmPodsPerNode())
	}
	var sbc v1alpha1.SandboxClaim
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "legacy-claim"}, &sbc); err != nil {
		t.Fatalf("reading the previous release's claim: %v", err)
	}

	// The new controller reconciles them: the pool's warm pod (made as the
	// agent would), its status, and the claim bound to it.
	warmPodOf(e, &p, "node-a", "")
	e.StartController(controller.Options{RunnerImage: newRunner}, "")
	got := e.WaitPhase(ns, "legacy-claim", bindTimeout, v1alpha1.ClaimBound, v1alpha1.ClaimFailed)
	if got.Status.Phase != v1alpha1.ClaimBound {
		t.Fatalf("the previous release's claim: %s %+v", got.Status.Phase, got.Status.Conditions)
	}
	testenv.Eventually(t, 30*time.Second, "the pool's status written by the new controller", func() error {
		var u unstructured.Unstructured
		u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("SandboxPool"))
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "legacy"}, &u); err != nil {
			return err
		}
		if _, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "status", "nodes"); ok {
			return errors.New("status.nodes of the previous release's agents is still there")
		}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "legacy"}, &p); err != nil {
			return err
		}
		if p.Status.Desired != 1 || p.Status.Claimed != 1 || p.Status.ObservedGeneration != p.Generation ||
			meta.FindStatusCondition(p.Status.Conditions, controller.ConditionReady) == nil {
			return fmt.Errorf("status %+v", p.Status)
		}
		return nil
	})

	// kubectl get: the printer columns, as a Table.
	for _, tc := range []struct {
		resource string
		columns  []string
		row      map[string]any // column: cell, for the object
	}{
		{"sandboxpools", []string{"Name", "Image", "Per node", "Desired", "Ready", "Claimed", "Age"},
			map[string]any{"Name": "legacy", "Image": "images.test/python:3.12", "Desired": float64(1), "Claimed": float64(1)}},
		{"sandboxclaims", []string{"Name", "Pool", "Phase", "Pod", "Origin", "Expires", "Age"},
			map[string]any{"Name": "legacy-claim", "Pool": "legacy", "Phase": "Bound", "Pod": got.Status.PodName, "Origin": "Warm"}},
	} {
		testenv.Eventually(t, 30*time.Second, "kubectl get "+tc.resource+" as a Table", func() error {
			table, err := getTable(ctx, cfg, ns, tc.resource)
			if err != nil {
				return err
			}
			var names []string
			for _, col := range table.ColumnDefinitions {
				names = append(names, col.Name)
			}
			if !slices.Equal(names, tc.columns) {
				return fmt.Errorf("columns %q, want %q", names, tc.columns)
			}
			if len(table.Rows) != 1 {
				return fmt.Errorf("%d rows, want 1", len(table.Rows))
			}
			for col, want := range tc.row {
				if cell := table.Rows[0].Cells[slices.Index(names, col)]; cell != want {
					return fmt.Errorf("column %s: %v (%T), want %v", col, cell, cell, want)
				}
			}
			return nil
		})
	}
}

// getTable lists resource (of sandbox.io/v1alpha1) in ns as kubectl get
// does: the server renders the CRD's printer columns into a Table.
func getTable(ctx context.Context, cfg *rest.Config, ns, resource string) (*metav1.Table, error) {
	rc := rest.CopyConfig(cfg)
	rc.GroupVersion = &v1alpha1.GroupVersion
	rc.APIPath = "/apis"
	rc.NegotiatedSerializer = serializer.WithoutConversionCodecFactory{CodecFactory: serializer.NewCodecFactory(nil)}
	cl, err := rest.RESTClientFor(rc)
	if err != nil {
		return nil, err
	}
	body, err := cl.Get().Namespace(ns).Resource(resource).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("listing %s as a Table: %w", resource, err)
	}
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		return nil, fmt.Errorf("decoding the %s Table: %w", resource, err)
	}
	if table.Kind != "Table" {
		return nil, fmt.Errorf("answer of kind %q, want Table", table.Kind)
	}
	return &table, nil
}
