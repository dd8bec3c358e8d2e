package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime"
	kjson "sigs.k8s.io/json"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/pool/netpol"
	"sandbox.io/injector/pool/secretaccess"
	"sandbox.io/injector/runner/api"
)

// isolationOptions are the flags of the controllers that keep pools
// isolated: a NetworkPolicy per pool and the agent's pull secret access.
type isolationOptions struct {
	poolNetworkPolicies bool
	runnerFrom          string
	agentServiceAccount string
}

func (o *isolationOptions) addFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.poolNetworkPolicies, "pool-network-policies", true, "Keep a NetworkPolicy per SandboxPool: egress as the pool's spec.network says (default denied but DNS), ingress only to the runner port from --runner-from.")
	fs.StringVar(&o.runnerFrom, "runner-from", "", `Where pool pods' runner port may be reached from: a JSON list of NetworkPolicy peers ({"podSelector":..., "namespaceSelector":...} or {"ipBlock":{"cidr":...}}); empty admits no one (the node's own traffic, such as probes, is left to the network plugin).`)
	fs.StringVar(&o.agentServiceAccount, "agent-service-account", "", "The node agent's ServiceAccount, namespace/name: each namespace whose SandboxPools name pull secrets gets a Role that lets it get exactly those. Empty: off.")
}

// peers parses --runner-from.
func (o *isolationOptions) peers() ([]networkingv1.NetworkPolicyPeer, error) {
	if strings.TrimSpace(o.runnerFrom) == "" {
		return nil, nil
	}
	var peers []networkingv1.NetworkPolicyPeer
	// Strict: a misspelled or miscased field is an error, not ignored.
	strict, err := kjson.UnmarshalStrict([]byte(o.runnerFrom), &peers)
	if err == nil {
		err = errors.Join(strict...)
	}
	if err != nil {
		return nil, fmt.Errorf("--runner-from: not a JSON list of NetworkPolicy peers: %w", err)
	}
	for i, p := range peers {
		if p.PodSelector == nil && p.NamespaceSelector == nil && p.IPBlock == nil {
			return nil, fmt.Errorf("--runner-from: entry %d names no podSelector, namespaceSelector or ipBlock", i)
		}
	}
	return peers, nil
}

// agent parses --agent-service-account.
func (o *isolationOptions) agent() (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(o.agentServiceAccount, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("--agent-service-account %q is not namespace/name", o.agentServiceAccount)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

func (o *isolationOptions) validate() error {
	var errs []error
	if _, err := o.peers(); err != nil {
		errs = append(errs, err)
	}
	if o.agentServiceAccount != "" {
		if _, err := o.agent(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// setupIsolation registers the isolation controllers that o turns on.
func setupIsolation(mgr ctrl.Manager, o *isolationOptions, log *slog.Logger) error {
	if !o.poolNetworkPolicies && o.agentServiceAccount == "" {
		return nil
	}
	// Registering the group again is harmless when another controller of
	// this binary already did.
	if err := v1alpha1.AddToScheme(mgr.GetScheme()); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	if o.poolNetworkPolicies {
		peers, err := o.peers()
		if err != nil {
			return err
		}
		if err := netpol.Setup(mgr, netpol.Options{RunnerPort: intstr.FromString(api.PortName), RunnerFrom: peers, Logger: log}); err != nil {
			return err
		}
	}
	if o.agentServiceAccount != "" {
		agent, err := o.agent()
		if err != nil {
			return err
		}
		if err := secretaccess.Setup(mgr, secretaccess.Options{Agent: agent, Logger: log}); err != nil {
			return err
		}
	}
	return nil
}
