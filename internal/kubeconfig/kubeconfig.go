// Package kubeconfig loads the Kubernetes client configuration every
// binary of the project uses: an explicit kubeconfig file when given, else
// controller-runtime's search (KUBECONFIG, in-cluster, ~/.kube/config).
package kubeconfig

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Load returns the configuration from path, or from the usual places when
// path is empty, with userAgent set (server-side apply and audit logs name
// the caller by it).
func Load(path, userAgent string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if path == "" {
		cfg, err = ctrl.GetConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
	}
	if err != nil {
		if path == "" {
			return nil, fmt.Errorf("loading kubernetes client configuration: %w", err)
		}
		return nil, fmt.Errorf("loading kubeconfig %s: %w", path, err)
	}
	cfg.UserAgent = userAgent
	return cfg, nil
}
