package netpol

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"sandbox.io/injector/api/v1alpha1"
)

// LabelManagedBy marks the NetworkPolicies this package keeps; its value is
// ManagedBy.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "sandbox-injector"
)

// DNSPort is the port the pool's pods may always reach, over UDP and TCP.
const DNSPort = 53

// maxNameLength is the longest object name the API accepts.
const maxNameLength = 253

// Name is the name of the NetworkPolicy of pool poolName: "sandbox-pool-"
// and the pool's name, shortened with a digest when that is too long.
func Name(poolName string) string {
	name := "sandbox-pool-" + poolName
	if len(name) <= maxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(poolName))
	return name[:maxNameLength-11] + "-" + hex.EncodeToString(sum[:5])
}

// Policy is the NetworkPolicy that pool p's pods get: it selects them by
// v1alpha1.LabelPool; ingress reaches only runnerPort (a port name or
// number), only from runnerFrom; egress reaches DNS and p's allow list, or
// anything when p's egress is Allow. It fails on an allow rule whose CIDR
// does not parse, naming it.
func Policy(p *v1alpha1.SandboxPool, runnerPort intstr.IntOrString, runnerFrom []networkingv1.NetworkPolicyPeer) (*networkingv1.NetworkPolicy, error) {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	dns := intstr.FromInt32(DNSPort)
	isController := true
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{
			Name:      Name(p.Name),
			Namespace: p.Namespace,
			Labels:    map[string]string{LabelManagedBy: ManagedBy, v1alpha1.LabelPool: p.Name},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(),
				Kind:       "SandboxPool",
				Name:       p.Name,
				UID:        p.UID,
				Controller: &isController,
			}},
		},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.LabelPool: p.Name}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &runnerPort}},
				// An empty list here would admit every source; no source
				// is what an empty runnerFrom means.
				From: runnerFrom,
			}},
		},
	}
	if len(runnerFrom) == 0 {
		np.Spec.Ingress = nil
	}
	if !p.Spec.Network.EgressDenied() {
		np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
		return np, nil
	}
	np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}},
	}}
	for i, a := range p.Spec.Network.Allow {
		if _, err := netip.ParsePrefix(a.CIDR); err != nil {
			return nil, fmt.Errorf("pool %s/%s: spec.network.allow[%d].cidr %q: %w", p.Namespace, p.Name, i, a.CIDR, err)
		}
		for j, e := range a.Except {
			if _, err := netip.ParsePrefix(e); err != nil {
				return nil, fmt.Errorf("pool %s/%s: spec.network.allow[%d].except[%d] %q: %w", p.Namespace, p.Name, i, j, e, err)
			}
		}
		rule := networkingv1.NetworkPolicyEgressRule{
			To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: a.CIDR, Except: a.Except}}},
		}
		for _, port := range a.Ports {
			proto := port.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			n := intstr.FromInt32(port.Port)
			rule.Ports = append(rule.Ports, networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &n, EndPort: port.EndPort})
		}
		np.Spec.Egress = append(np.Spec.Egress, rule)
	}
	return np, nil
}
