package webhook

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sandbox.io/injector/internal/testenv"
)

// probeCases are liveness probes the API server accepts or refuses, for the
// conformance test and the unit test of the rules.
var probeCases = []string{
	`{"exec":{"command":["cat","/tmp/health"]}}`,
	`{"exec":{"command":["true"]},"initialDelaySeconds":3,"periodSeconds":1,"timeoutSeconds":2,"failureThreshold":5,"terminationGracePeriodSeconds":4}`,
	`{"httpGet":{"port":8080}}`,
	`{"httpGet":{"port":"http","path":"/healthz","host":"127.0.0.1","scheme":"HTTPS","httpHeaders":[{"name":"X-A","value":"b"}]}}`,
	`{"httpGet":{"port":8080,"protocol":"HTTP1"}}`,
	`{"tcpSocket":{"port":5432}}`,
	`{"grpc":{"port":9000}}`,
	`{"grpc":{"port":9000,"mode":"Plaintext"}}`,
	`{}`,
	`{"exec":{}}`,
	`{"exec":{"command":["true"]},"tcpSocket":{"port":80}}`,
	`{"httpGet":{"port":8080},"grpc":{"port":9000},"tcpSocket":{"port":80}}`,
	`{"httpGet":{"port":0}}`,
	`{"httpGet":{"port":70000}}`,
	`{"httpGet":{"port":"Bad_Name"}}`,
	`{"httpGet":{"port":"a-very-long-port-name"}}`,
	`{"httpGet":{"port":80,"scheme":"FTP"}}`,
	`{"httpGet":{"port":80,"httpHeaders":[{"name":"Bad Header","value":"x"}]}}`,
	`{"httpGet":{"port":80,"protocol":"HTTP3"}}`,
	`{"httpGet":{"port":80,"protocol":"HTTP2","scheme":"HTTPS"}}`,
	`{"httpGet":{"port":80,"protocol":"HTTP2","host":"example"}}`,
	`{"tcpSocket":{"port":80},"successThreshold":2}`,
	`{"tcpSocket":{"port":80},"periodSeconds":-1,"timeoutSeconds":-2,"initialDelaySeconds":-3,"failureThreshold":-4}`,
	`{"tcpSocket":{"port":80},"terminationGracePeriodSeconds":0}`,
	`{"grpc":{"port":0,"mode":"Bogus"}}`,
}

// ourVerdict is the webhook's reading of a probe under the API server's
// rules alone (before the runner's own limits): the defaulted probe, or
// the fields at fault.
func ourVerdict(t *testing.T, js string) (*corev1.Probe, []string) {
	t.Helper()
	var p corev1.Probe
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		t.Fatal(err)
	}
	setProbeDefaults(&p)
	errs := validateLivenessProbe(&p, field.NewPath("spec", "containers").Index(0).Child("livenessProbe"))
	if len(errs) == 0 {
		return &p, nil
	}
	return nil, fieldsOf(errs)
}

func fieldsOf(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field+" "+string(e.Type))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestLivenessProbeRulesMatchAPIServer creates a pod with each probe as a
// container's livenessProbe on a real kube-apiserver (dry run) and checks
// that the webhook defaults each probe to what the API server stores, and
// refuses exactly the probes the API server refuses, for the same fields.
func TestLivenessProbeRulesMatchAPIServer(t *testing.T) {
	t.Parallel()
	cfg := testenv.Start(t, &envtest.Environment{})
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, js := range probeCases {
		t.Run(js, func(t *testing.T) {
			var p corev1.Probe
			if err := json.Unmarshal([]byte(js), &p); err != nil {
				t.Fatal(err)
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "app:v1", LivenessProbe: &p,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			}
			got, err := kube.CoreV1().Pods("default").Create(t.Context(), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			want, wantFields := ourVerdict(t, js)
			if err == nil {
				if wantFields != nil {
					t.Fatalf("the API server accepts the probe, the webhook refuses %v", wantFields)
				}
				if diff := cmp.Diff(got.Spec.Containers[0].LivenessProbe, want); diff != "" {
					t.Errorf("defaults differ (-API server +webhook):\n%s", diff)
				}
				return
			}
			var status apierrors.APIStatus
			if !errors.As(err, &status) || status.Status().Details == nil {
				t.Fatalf("creating: %v", err)
			}
			var server []string
			for _, c := range status.Status().Details.Causes {
				if strings.Contains(c.Field, "livenessProbe") {
					server = append(server, c.Field+" "+string(c.Type))
				}
			}
			slices.Sort(server)
			server = slices.Compact(server)
			if server == nil && wantFields == nil {
				t.Fatalf("the API server refuses the pod for another reason: %v", err)
			}
			if diff := cmp.Diff(server, wantFields); diff != "" {
				t.Errorf("refused fields differ (-API server +webhook):\n%s\nAPI server: %v", diff, err)
			}
		})
	}
}

// TestParseLivenessProbeRunnerLimits: what the API server allows but the
// runner cannot do is refused with a reason.
func TestParseLivenessProbeRunnerLimits(t *testing.T) {
	t.Parallel()
	for js, want := range map[string]string{
		`{"grpc":{"port":9000}}`:                         "grpc probes are not supported by the runner",
		`{"httpGet":{"port":80,"protocol":"HTTP2"}}`:     "HTTP2 is not supported by the runner",
		`{"tcpSocket":{"port":80},"unknownField":1}`:     `unknown field "unknownField"`,
		`{"tcpSocket":{"port":80},"successThreshold":3}`: "successThreshold: Invalid value: 3: must be 1",
	} {
		if _, err := parseLivenessProbe(js); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseLivenessProbe(%s) = %v, want %q", js, err, want)
		}
	}
	for _, js := range probeCases {
		p, fields := ourVerdict(t, js)
		if fields != nil || p.GRPC != nil || strings.Contains(js, `"HTTP2"`) {
			continue // refused by the API server, or by the runner's limits above
		}
		if _, err := parseLivenessProbe(js); err != nil {
			t.Errorf("parseLivenessProbe(%s): %v", js, err)
		}
	}
}
