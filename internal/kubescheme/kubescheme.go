// Package kubescheme builds the one runtime.Scheme every cache and client of
// the project reads with: the built-in Kubernetes types and sandbox.io/v1alpha1.
package kubescheme

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"sandbox.io/injector/api/v1alpha1"
)

// New returns a scheme of the built-in types and sandbox.io/v1alpha1.
func New() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("adding the built-in types to the scheme: %w", err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("adding sandbox.io/v1alpha1 to the scheme: %w", err)
	}
	return s, nil
}
