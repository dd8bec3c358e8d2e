package charts

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Defaults of a Release.
const (
	// DefaultReleaseName is the release name Render uses.
	DefaultReleaseName = "sandbox-injector"
	// DefaultNamespace is the release namespace Render uses.
	DefaultNamespace = "sandbox-injector"
	// DefaultKubeVersion is the Kubernetes version `helm template` renders
	// for: the version of the project's own cluster and envtest binaries. It
	// matters because the chart requires Kubernetes 1.30 or later, and a helm
	// binary built from source otherwise assumes an old default.
	DefaultKubeVersion = "v1.37.2"
)

// ChartName is the chart's directory name under charts/.
const ChartName = "sandbox-injector"

// modulePath is the root module; RepoRoot looks for its go.mod.
const modulePath = "sandbox.io/injector"

// ErrNoHelm reports that no helm binary was found.
var ErrNoHelm = errors.New("helm binary not found (run make tools-envtest)")

// Release describes one `helm template` run.
type Release struct {
	// Name is the release name. Default: DefaultReleaseName.
	Name string
	// Namespace is the release namespace. Default: DefaultNamespace.
	Namespace string
	// Values are the chart values, as they would appear in a values file.
	// Default: none (the chart's values.yaml alone).
	Values map[string]any
	// KubeVersion is the Kubernetes version to render for. Default:
	// DefaultKubeVersion.
	KubeVersion string
	// ChartDir is the chart directory. Default: ChartDir().
	ChartDir string
	// APIVersions are extra API versions helm assumes the cluster serves
	// (`helm template --api-versions`), such as "cert-manager.io/v1/Issuer"
	// for the chart's certManager.enabled auto. Default: none beyond
	// Kubernetes' own.
	APIVersions []string
}

func (r *Release) setDefaults() error {
	if r.Name == "" {
		r.Name = DefaultReleaseName
	}
	if r.Namespace == "" {
		r.Namespace = DefaultNamespace
	}
	if r.KubeVersion == "" {
		r.KubeVersion = DefaultKubeVersion
	}
	if r.ChartDir == "" {
		dir, err := ChartDir()
		if err != nil {
			return err
		}
		r.ChartDir = dir
	}
	return nil
}

// RepoRoot returns the root of the sandbox.io/injector module: the nearest
// directory, from the working directory upwards, whose go.mod declares it.
// Tests run in their package's directory, so this works from any package.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getting working directory: %w", err)
	}
	for {
		if isRootModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("finding go.mod of module %s above the working directory", modulePath)
		}
		dir = parent
	}
}

func isRootModule(goMod string) bool {
	f, err := os.Open(goMod)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}

// ChartDir returns the directory of the sandbox-injector chart.
func ChartDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "charts", ChartName), nil
}

// HelmPath returns the helm binary to use: $HELM when set, else bin/helm under
// the repository root. It returns an error wrapping ErrNoHelm when that file
// does not exist.
func HelmPath() (string, error) {
	path := os.Getenv("HELM")
	if path == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		path = filepath.Join(root, "bin", "helm")
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoHelm, err)
	}
	return path, nil
}

// Render runs `helm template` on the chart for the default release with the
// given values, and returns every rendered object in order.
func Render(ctx context.Context, helmPath string, values map[string]any) ([]*unstructured.Unstructured, error) {
	return RenderRelease(ctx, helmPath, Release{Values: values})
}

// RenderRelease runs `helm template` for r and returns every rendered object in
// the order helm printed them. A values error (the chart's schema rejects
// them) or a template error is returned with helm's message.
func RenderRelease(ctx context.Context, helmPath string, r Release) ([]*unstructured.Unstructured, error) {
	if err := r.setDefaults(); err != nil {
		return nil, err
	}
	args := []string{"template", r.Name, r.ChartDir, "--namespace", r.Namespace, "--kube-version", r.KubeVersion}
	for _, v := range r.APIVersions {
		args = append(args, "--api-versions", v)
	}
	out, err := runHelm(ctx, helmPath, args, r.Values)
	if err != nil {
		return nil, fmt.Errorf("rendering chart %s as release %s/%s: %w", r.ChartDir, r.Namespace, r.Name, err)
	}
	objs, err := Decode(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("decoding the output of helm template: %w", err)
	}
	return objs, nil
}

// Lint runs `helm lint --strict` on the chart with the given values for
// release r (r.Values are used; r.Name is ignored by helm lint).
func Lint(ctx context.Context, helmPath string, r Release) error {
	if err := r.setDefaults(); err != nil {
		return err
	}
	args := []string{"lint", r.ChartDir, "--strict", "--namespace", r.Namespace, "--kube-version", r.KubeVersion}
	if _, err := runHelm(ctx, helmPath, args, r.Values); err != nil {
		return fmt.Errorf("linting chart %s: %w", r.ChartDir, err)
	}
	return nil
}

// runHelm runs helm with args, passing values through a temporary values
// file (JSON is YAML), and returns its standard output.
func runHelm(ctx context.Context, helmPath string, args []string, values map[string]any) ([]byte, error) {
	if len(values) > 0 {
		data, err := json.Marshal(values)
		if err != nil {
			return nil, fmt.Errorf("encoding values: %w", err)
		}
		f, err := os.CreateTemp("", "sandbox-injector-values-*.json")
		if err != nil {
			return nil, fmt.Errorf("creating values file: %w", err)
		}
		defer os.Remove(f.Name())
		if _, err := f.Write(data); err != nil {
			f.Close()
			return nil, fmt.Errorf("writing values file: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("writing values file: %w", err)
		}
		args = append(args, "--values", f.Name())
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, helmPath, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Keep helm away from any user configuration and cluster: it only
	// renders here.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+os.DevNull)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("running helm %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()+"\n"+stdout.String()))
	}
	return stdout.Bytes(), nil
}

// Decode reads a multi-document YAML (or JSON) stream and returns each
// non-empty document as an object. A document without apiVersion or kind is
// an error.
func Decode(r io.Reader) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decoding document %d: %w", len(objs)+1, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" {
			return nil, fmt.Errorf("decoding document %d: missing apiVersion or kind", len(objs)+1)
		}
		objs = append(objs, u)
	}
}

// Find returns the objects of the given kind, in order.
func Find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	return found
}

// FindOne returns the single object of the given kind, or an error when there
// is none or more than one.
func FindOne(objs []*unstructured.Unstructured, kind string) (*unstructured.Unstructured, error) {
	found := Find(objs, kind)
	if len(found) != 1 {
		return nil, fmt.Errorf("finding %s: rendered %d, want 1", kind, len(found))
	}
	return found[0], nil
}

// Into converts a rendered object into a typed one, such as
// *appsv1.Deployment. Unknown fields are an error, so a typo in a template
// is caught.
func Into(u *unstructured.Unstructured, typed any) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, typed, true); err != nil {
		return fmt.Errorf("converting %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// MutatingWebhookConfiguration returns the chart's one
// MutatingWebhookConfiguration, typed.
func MutatingWebhookConfiguration(objs []*unstructured.Unstructured) (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	u, err := FindOne(objs, "MutatingWebhookConfiguration")
	if err != nil {
		return nil, err
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := Into(u, &mwc); err != nil {
		return nil, err
	}
	return &mwc, nil
}

// PointAt returns a copy of the chart's MutatingWebhookConfiguration whose
// webhooks call baseURL (for example https://127.0.0.1:9443) instead of the
// in-cluster Service, keeping each webhook's path, and trust caBundle (PEM).
// Everything else (rules, selectors, matchConditions, policies) stays exactly
// as rendered, so an integration test exercises the chart's own routing.
func PointAt(mwc *admissionregistrationv1.MutatingWebhookConfiguration, baseURL string, caBundle []byte) *admissionregistrationv1.MutatingWebhookConfiguration {
	out := mwc.DeepCopy()
	out.ResourceVersion = ""
	delete(out.Annotations, "cert-manager.io/inject-ca-from")
	for i := range out.Webhooks {
		cc := &out.Webhooks[i].ClientConfig
		path := ""
		if cc.Service != nil && cc.Service.Path != nil {
			path = *cc.Service.Path
		}
		url := strings.TrimSuffix(baseURL, "/") + path
		cc.Service = nil
		cc.URL = &url
		cc.CABundle = append([]byte(nil), caBundle...)
	}
	return out
}
