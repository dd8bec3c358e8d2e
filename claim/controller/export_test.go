package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WithClaimProtocol returns o with the claim protocol the controller
// speaks set to v: tests play the controller of another release.
func WithClaimProtocol(o Options, v int) Options {
	o.claimProtocol = v
	return o
}

// NewReconciler is the claim reconciler the controller runs, reading
// through cached and writing through uncached: tests hand it a cache that
// lags the API server.
func NewReconciler(o Options, cached, uncached client.Client) (*ClaimReconciler, error) {
	o.setDefaults()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	return newClaimReconciler(o, cached, uncached, m), nil
}
