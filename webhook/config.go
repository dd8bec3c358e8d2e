package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"sandbox.io/injector/internal/claimkey"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"sandbox.io/injector/api/v1alpha1"
	"sandbox.io/injector/internal/version"
	"sandbox.io/injector/runner/api"
)

// Config is what the mutation and the handler need to know. The zero value
// of every field but RunnerImage gets the default its comment states.
type Config struct {
	// RunnerImage is the image that holds the runner at ImageRunnerPath.
	// Required.
	RunnerImage string
	// RunnerVersion is recorded in the status annotation. Default: this
	// build's version.
	RunnerVersion string
	// RunnerPort is the port of the first wrapped container's runner; later
	// ones take the next free numbers. Default api.DefaultPort (7080).
	RunnerPort int32
	// TokenSecret is the Secret (in the pod's namespace) with the API token,
	// when the pod does not name one. Default api.DefaultTokenSecret
	// ("sandbox-runner-token").
	TokenSecret string
	// ExcludedNamespaces are never injected, whatever their labels or their
	// pods' annotations say. Default kube-system, kube-public and
	// kube-node-lease; ReleaseNamespace is always added.
	ExcludedNamespaces []string
	// ReleaseNamespace is the webhook's own namespace.
	ReleaseNamespace string
	// InitResources are the init container's requests and limits. Default
	// 10m CPU and 16Mi memory requested, 32Mi memory limited.
	InitResources corev1.ResourceRequirements
	// EntrypointTimeout bounds the registry lookups of one admission.
	// Default 2s.
	EntrypointTimeout time.Duration
	// Method is how the runner reaches the containers: v1alpha1.MethodAuto
	// (default), MethodCopy or MethodImageVolume. See ChooseMethod.
	Method string
	// ClaimKeys derive the claim verifiers of pool pods (pods labelled
	// sandbox.io/pool), under the ring's current key: their runners get no
	// token, only a verifier of the per-pod credential the claim controller
	// computes with the same key. Without a ring, pool pods are refused.
	ClaimKeys *claimkey.Ring
	// NewNonce makes the claim nonce of a pool pod that has none; default
	// claimkey.NewNonce. Tests set a fixed one.
	NewNonce func() (string, error)

	// encoded holds the JSON of what every injection adds unchanged,
	// encoded once by Complete instead of once per admission.
	encoded *encodedParts
}

type encodedParts struct {
	initContainer, runnerVolume, imageVolume, defaultTokenVolume json.RawMessage
}

// Defaults of Config.
const (
	DefaultEntrypointTimeout = 2 * time.Second
)

// DefaultExcludedNamespaces are the namespaces that are never injected.
var DefaultExcludedNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

func (c *Config) setDefaults() {
	if c.RunnerVersion == "" {
		c.RunnerVersion = version.Version
	}
	if c.RunnerPort == 0 {
		c.RunnerPort = api.DefaultPort
	}
	if c.TokenSecret == "" {
		c.TokenSecret = api.DefaultTokenSecret
	}
	if c.NewNonce == nil {
		c.NewNonce = claimkey.NewNonce
	}
	if c.ExcludedNamespaces == nil {
		c.ExcludedNamespaces = append([]string(nil), DefaultExcludedNamespaces...)
	}
	if c.ReleaseNamespace != "" && !contains(c.ExcludedNamespaces, c.ReleaseNamespace) {
		c.ExcludedNamespaces = append(c.ExcludedNamespaces, c.ReleaseNamespace)
	}
	if c.InitResources.Requests == nil && c.InitResources.Limits == nil {
		c.InitResources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("16Mi"),
			},
			Limits: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse("32Mi"),
			},
		}
	}
	if c.EntrypointTimeout == 0 {
		c.EntrypointTimeout = DefaultEntrypointTimeout
	}
	if c.Method == "" {
		c.Method = v1alpha1.MethodAuto
	}
}

// Complete returns a copy of c with its defaults applied, or an error that
// lists every invalid field.
func (c Config) Complete() (Config, error) {
	c.setDefaults()
	var errs []error
	if strings.TrimSpace(c.RunnerImage) == "" {
		errs = append(errs, errors.New("runner image is required"))
	}
	if c.RunnerPort < 1 || c.RunnerPort > 65535 {
		errs = append(errs, fmt.Errorf("runner port %d is not in 1-65535", c.RunnerPort))
	}
	if msgs := validation.IsDNS1123Subdomain(c.TokenSecret); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("token secret %q: %s", c.TokenSecret, strings.Join(msgs, "; ")))
	}
	switch c.Method {
	case v1alpha1.MethodAuto, v1alpha1.MethodCopy, v1alpha1.MethodImageVolume:
	default:
		errs = append(errs, fmt.Errorf("injection method %q is not %s, %s or %s", c.Method,
			v1alpha1.MethodAuto, v1alpha1.MethodCopy, v1alpha1.MethodImageVolume))
	}
	if c.EntrypointTimeout < 0 {
		errs = append(errs, fmt.Errorf("entrypoint timeout %s is negative", c.EntrypointTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	enc, err := encodeParts(&c)
	if err != nil {
		return c, err
	}
	c.encoded = enc
	return c, nil
}

func encodeParts(c *Config) (*encodedParts, error) {
	var enc encodedParts
	var err error
	if enc.initContainer, err = json.Marshal(initContainer(c)); err != nil {
		return nil, fmt.Errorf("encoding init container: %w", err)
	}
	if enc.runnerVolume, err = json.Marshal(runnerVolume()); err != nil {
		return nil, fmt.Errorf("encoding runner volume: %w", err)
	}
	if enc.imageVolume, err = json.Marshal(runnerImageVolume(c.RunnerImage)); err != nil {
		return nil, fmt.Errorf("encoding runner image volume: %w", err)
	}
	if enc.defaultTokenVolume, err = json.Marshal(tokenVolume(c.TokenSecret)); err != nil {
		return nil, fmt.Errorf("encoding token volume: %w", err)
	}
	return &enc, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
