package charts

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// checkSelftest runs `sandbox-webhook selftest` the way the chart's helm
// test hook does: as the hook's ServiceAccount, with the hook's Role in
// appNS and nothing else. The webhook running at 127.0.0.1:port (serving a
// certificate that names 127.0.0.1) is registered for appNS alone, through a
// copy of the chart's webhook configuration pointed at it, so the API server
// itself calls it during the dry runs. The self-test must pass there, and be
// refused by RBAC in a namespace where the hook has no Role.
func checkSelftest(t *testing.T, ctx context.Context, c client.Client, binary string, r Release, appNS string, port int) {
	t.Helper()
	fullname := r.Name + "-sandbox-injector"
	values := map[string]any{}
	for k, v := range r.Values {
		values[k] = v
	}
	values["tests"] = map[string]any{"namespace": appNS}
	r.Values = values
	objs := render(t, r)

	// The hook's ServiceAccount, Role and RoleBinding, as helm test creates them.
	for _, o := range objs {
		if o.GetAnnotations()["helm.sh/hook"] != "test" || o.GetKind() == "Pod" {
			continue
		}
		obj := o.DeepCopy()
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("creating the hook's %s %s: %v", o.GetKind(), o.GetName(), err)
		}
		t.Cleanup(func() { _ = c.Delete(ctx, obj) })
	}
	pod := one[corev1.Pod](t, objs, "Pod")
	var live admissionregistrationv1.MutatingWebhookConfiguration
	if err := c.Get(ctx, client.ObjectKey{Name: fullname}, &live); err != nil {
		t.Fatal(err)
	}
	pointed := PointAt(&live, fmt.Sprintf("https://127.0.0.1:%d", port), live.Webhooks[0].ClientConfig.CABundle)
	pointed.Name = fullname + "-selftest"
	pointed.ManagedFields = nil
	pointed.UID = ""
	for i := range pointed.Webhooks {
		sel := pointed.Webhooks[i].NamespaceSelector
		if sel == nil {
			sel = &metav1.LabelSelector{}
		}
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{appNS},
		})
		pointed.Webhooks[i].NamespaceSelector = sel
	}
	if err := c.Create(ctx, pointed); err != nil {
		t.Fatalf("registering the webhook for %s: %v", appNS, err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, pointed) })

	// A kubeconfig that acts as the hook's ServiceAccount.
	cfg, err := clientcmd.Load(apiServer.env.KubeConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range cfg.AuthInfos {
		user.Impersonate = "system:serviceaccount:" + r.Namespace + ":" + pod.Spec.ServiceAccountName
		user.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + r.Namespace, "system:authenticated"}
	}
	asTest := filepath.Join(t.TempDir(), "test.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, asTest); err != nil {
		t.Fatal(err)
	}
	selftest := func(args []string) (string, error) {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, binary, append(args, "--kubeconfig="+asTest)...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	args := pod.Spec.Containers[0].Args
	if len(args) == 0 || args[0] != "selftest" {
		t.Fatalf("the test pod runs %v, want the selftest command", args)
	}
	// The API server picks up a new webhook configuration within moments.
	eventuallyWithin(t, "selftest passes", 90*time.Second, func() error {
		out, err := selftest(args)
		if err != nil {
			if strings.Contains(out, "forbidden") {
				t.Fatalf("the hook's RBAC does not allow the dry runs: %s", out)
			}
			return fmt.Errorf("%w: %s", err, out)
		}
		if !strings.Contains(out, "ok: a dry-run pod in namespace "+appNS+" was injected") {
			return fmt.Errorf("output %q", out)
		}
		return nil
	})

	// Elsewhere the hook has no permission: RBAC, not luck, makes it pass.
	out, err := selftest([]string{"selftest", "--namespace=default", "--image=x"})
	if err == nil || !strings.Contains(out, "forbidden") {
		t.Errorf("selftest in namespace default (no Role there): %v, %s; want forbidden", err, out)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: appNS, Name: "sandbox-selftest-in"}, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}}); !apierrors.IsNotFound(err) {
		t.Errorf("the dry run created a pod (get: %v)", err)
	}
	_ = os.Remove(asTest)
}
