package keychain

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
)

// dockerAuth is one entry of a docker config file.
type dockerAuth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

type credential struct {
	host   string // host[:port], may hold "*" labels
	prefix string // repository path prefix, "" for any
	auth   authn.AuthConfig
}

// Keychain is the credentials of a pod's image pull secrets. It implements
// authn.Keychain; a registry it has no entry for is anonymous.
type Keychain struct {
	creds []credential
}

var _ authn.Keychain = (*Keychain)(nil)

// FromSecrets reads kubernetes.io/dockerconfigjson and
// kubernetes.io/dockercfg Secrets. Secrets of other types are ignored, as
// the kubelet ignores them; a malformed one is an error naming it.
func FromSecrets(secrets []*corev1.Secret) (*Keychain, error) {
	kc := &Keychain{}
	for _, s := range secrets {
		var auths map[string]dockerAuth
		switch s.Type {
		case corev1.SecretTypeDockerConfigJson:
			var file struct {
				Auths map[string]dockerAuth `json:"auths"`
			}
			if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &file); err != nil {
				return nil, fmt.Errorf("parsing pull secret %s/%s: %w", s.Namespace, s.Name, err)
			}
			auths = file.Auths
		case corev1.SecretTypeDockercfg:
			if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &auths); err != nil {
				return nil, fmt.Errorf("parsing pull secret %s/%s: %w", s.Namespace, s.Name, err)
			}
		default:
			continue
		}
		for key, a := range auths {
			c, err := newCredential(key, a)
			if err != nil {
				return nil, fmt.Errorf("pull secret %s/%s: %w", s.Namespace, s.Name, err)
			}
			kc.creds = append(kc.creds, c)
		}
	}
	return kc, nil
}

func newCredential(key string, a dockerAuth) (credential, error) {
	if !strings.Contains(key, "://") {
		key = "https://" + key
	}
	u, err := url.Parse(key)
	if err != nil {
		return credential{}, fmt.Errorf("registry key %q: %w", key, err)
	}
	prefix := strings.Trim(u.Path, "/")
	// Docker's own config names Docker Hub "https://index.docker.io/v1/":
	// the "v1" is the API version, not a repository prefix.
	if u.Host == "index.docker.io" || u.Host == "docker.io" {
		u.Host = "index.docker.io"
		if prefix == "v1" || prefix == "v2" {
			prefix = ""
		}
	}
	cfg := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken}
	if a.Auth != "" && cfg.Username == "" {
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return credential{}, fmt.Errorf("registry %s: auth field is not base64: %w", u.Host, err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return credential{}, fmt.Errorf("registry %s: auth field is not user:password", u.Host)
		}
		cfg.Username, cfg.Password = user, pass
	}
	return credential{host: u.Host, prefix: prefix, auth: cfg}, nil
}

// Resolve returns the credentials for a repository: the most specific
// matching entry (longest path prefix), as the kubelet chooses.
func (k *Keychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	if k == nil {
		return authn.Anonymous, nil
	}
	repo := ""
	if r, ok := target.(interface{ RepositoryStr() string }); ok {
		repo = r.RepositoryStr()
	}
	best := -1
	for i, c := range k.creds {
		if !hostMatches(c.host, target.RegistryStr()) {
			continue
		}
		if c.prefix != "" && repo != c.prefix && !strings.HasPrefix(repo, c.prefix+"/") {
			continue
		}
		if best < 0 || len(c.prefix) > len(k.creds[best].prefix) {
			best = i
		}
	}
	if best < 0 {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(k.creds[best].auth), nil
}

// hostMatches compares host[:port] patterns label by label; a "*" label
// matches one label, and ports must be equal.
func hostMatches(pattern, host string) bool {
	pHost, pPort := splitPort(pattern)
	hHost, hPort := splitPort(host)
	if pPort != hPort {
		return false
	}
	pl, hl := strings.Split(pHost, "."), strings.Split(hHost, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if ok, _ := path.Match(pl[i], hl[i]); !ok {
			return false
		}
	}
	return true
}

func splitPort(hostport string) (string, string) {
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		return strings.ToLower(hostport[:i]), hostport[i+1:]
	}
	return strings.ToLower(hostport), ""
}
