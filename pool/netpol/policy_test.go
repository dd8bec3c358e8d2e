package netpol

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"sandbox.io/injector/api/v1alpha1"
)

func testPool() *v1alpha1.SandboxPool {
	return &v1alpha1.SandboxPool{
		ObjectMeta: metav1.ObjectMeta{Name: "py", Namespace: "team", UID: "uid-1"},
		Spec:       v1alpha1.SandboxPoolSpec{Template: v1alpha1.SandboxTemplate{Image: "python:3.13"}},
	}
}

var controllerPeer = networkingv1.NetworkPolicyPeer{
	NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "sandbox-system"}},
	PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/component": "webhook"}},
}

func TestPolicyDeniesEgressByDefault(t *testing.T) {
	t.Parallel()
	np, err := Policy(testPool(), DefaultRunnerPort, []networkingv1.NetworkPolicyPeer{controllerPeer})
	if err != nil {
		t.Fatal(err)
	}
	if np.Name != "sandbox-pool-py" || np.Namespace != "team" || np.OwnerReferences[0].UID != "uid-1" || !*np.OwnerReferences[0].Controller {
		t.Errorf("meta %+v", np.ObjectMeta)
	}
	if got := np.Spec.PodSelector.MatchLabels; len(got) != 1 || got[v1alpha1.LabelPool] != "py" {
		t.Errorf("pod selector %v, want only sandbox.io/pool=py", got)
	}
	if len(np.Spec.PolicyTypes) != 2 {
		t.Errorf("policy types %v, want Ingress and Egress", np.Spec.PolicyTypes)
	}
	in := np.Spec.Ingress
	if len(in) != 1 || len(in[0].Ports) != 1 || in[0].Ports[0].Port.StrVal != "sandbox-runner" || *in[0].Ports[0].Protocol != corev1.ProtocolTCP ||
		len(in[0].From) != 1 || in[0].From[0].PodSelector.MatchLabels["app.kubernetes.io/component"] != "webhook" {
		t.Errorf("ingress %+v, want the runner port from the controller only", in)
	}
	out := np.Spec.Egress
	if len(out) != 1 || len(out[0].To) != 0 || len(out[0].Ports) != 2 || out[0].Ports[0].Port.IntVal != DNSPort || out[0].Ports[1].Port.IntVal != DNSPort {
		t.Errorf("egress %+v, want DNS (UDP and TCP 53) only", out)
	}
}

func TestPolicyAllowList(t *testing.T) {
	t.Parallel()
	p := testPool()
	end := int32(8090)
	p.Spec.Network.Allow = []v1alpha1.EgressRule{
		{CIDR: "10.0.0.0/8", Except: []string{"10.96.0.0/12"}, Ports: []v1alpha1.EgressPort{{Port: 443}, {Port: 8080, EndPort: &end, Protocol: corev1.ProtocolUDP}}},
		{CIDR: "192.0.2.7/32"},
	}
	np, err := Policy(p, intstr.FromInt32(7080), nil)
	if err != nil {
		t.Fatal(err)
	}
	if np.Spec.Ingress != nil {
		t.Errorf("no runner sources: ingress %+v, want none admitted", np.Spec.Ingress)
	}
	out := np.Spec.Egress
	if len(out) != 3 {
		t.Fatalf("egress %+v, want DNS and two allow rules", out)
	}
	a := out[1]
	if a.To[0].IPBlock.CIDR != "10.0.0.0/8" || a.To[0].IPBlock.Except[0] != "10.96.0.0/12" || len(a.Ports) != 2 ||
		*a.Ports[0].Protocol != corev1.ProtocolTCP || a.Ports[0].Port.IntVal != 443 || *a.Ports[1].Protocol != corev1.ProtocolUDP || *a.Ports[1].EndPort != 8090 {
		t.Errorf("first allow rule %+v", a)
	}
	if b := out[2]; b.To[0].IPBlock.CIDR != "192.0.2.7/32" || b.Ports != nil {
		t.Errorf("second allow rule %+v, want every port of 192.0.2.7/32", b)
	}

	p.Spec.Network.Allow[1].CIDR = "192.0.2.7"
	if _, err := Policy(p, DefaultRunnerPort, nil); err == nil || !strings.Contains(err.Error(), "spec.network.allow[1].cidr") {
		t.Errorf("a CIDR without a prefix length: error %v, want one naming spec.network.allow[1].cidr", err)
	}
}

func TestPolicyEgressAllow(t *testing.T) {
	t.Parallel()
	p := testPool()
	p.Spec.Network.Egress = v1alpha1.EgressAllow
	p.Spec.Network.Allow = []v1alpha1.EgressRule{{CIDR: "not a cidr"}}
	np, err := Policy(p, DefaultRunnerPort, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(np.Spec.Egress) != 1 || len(np.Spec.Egress[0].To) != 0 || len(np.Spec.Egress[0].Ports) != 0 {
		t.Errorf("egress %+v, want one rule admitting everything", np.Spec.Egress)
	}
}

func TestName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 253)
	if n := Name(long); len(n) != 253 || n == Name(strings.Repeat("a", 252)+"b") {
		t.Errorf("long names: %d characters, distinct: %v", len(n), n != Name(strings.Repeat("a", 252)+"b"))
	}
}
