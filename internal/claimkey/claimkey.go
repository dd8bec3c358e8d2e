// Package claimkey derives the per-pod claim credentials of warm pool pods.
//
// The claim controller and the webhook share one random key, kept in a
// Secret of the release's namespace that nothing else reads. The webhook
// gives every pool pod a random nonce (annotation sandbox.io/claim-nonce)
// and its runner only Verifier(key, namespace, nonce); the controller
// computes Credential(key, namespace, nonce) when it binds the pod and
// sends it to the runner's POST /claim. A sandbox that reads its own
// nonce, or every nonce of the namespace, learns nothing that opens
// another pod: the credential needs the key.
package claimkey

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// SecretKey is the key, inside the claim key Secret, that holds the key.
const SecretKey = "key"

// KeyBytes is the length of a generated key.
const KeyBytes = 32

// NonceBytes is the length of a generated nonce, before hex encoding.
const NonceBytes = 16

// VerifierPrefix starts a verifier as the runner's --claim-verifier takes it.
const VerifierPrefix = "sha256:"

// Key is the shared secret the credentials derive from.
type Key []byte

// NewNonce returns a fresh random nonce for a pool pod.
func NewNonce() (string, error) {
	b := make([]byte, NonceBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a claim nonce: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Credential is the bearer token that authorizes POST /claim on the runner
// of the pod with nonce in namespace: hex(HMAC-SHA256(key, namespace/nonce)).
func (k Key) Credential(namespace, nonce string) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(namespace + "/" + nonce))
	return hex.EncodeToString(m.Sum(nil))
}

// Verifier is what the runner of that pod holds: "sha256:" and the hex
// SHA-256 of the credential.
func (k Key) Verifier(namespace, nonce string) string {
	return TokenVerifier(k.Credential(namespace, nonce))
}

// TokenVerifier is "sha256:" and the hex SHA-256 of token.
func TokenVerifier(token string) string {
	sum := sha256.Sum256([]byte(token))
	return VerifierPrefix + hex.EncodeToString(sum[:])
}

// Load reads the key from the Secret name in namespace, creating the
// Secret with a random key when it does not exist. Replicas that race to
// create it all end with the one that won.
func Load(ctx context.Context, kube kubernetes.Interface, namespace, name string) (Key, error) {
	for range 3 {
		s, err := kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return fromSecret(s)
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading the claim key Secret %s/%s: %w", namespace, name, err)
		}
		key := make([]byte, KeyBytes)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generating a claim key: %w", err)
		}
		_, err = kube.CoreV1().Secrets(namespace).Create(ctx, keySecret(namespace, name, key), metav1.CreateOptions{})
		if err == nil {
			return key, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating the claim key Secret %s/%s: %w", namespace, name, err)
		}
	}
	return nil, fmt.Errorf("reading the claim key Secret %s/%s: it keeps appearing and disappearing", namespace, name)
}

// ErrKeyChanged ends Keep when the claim key Secret holds another key than
// the process loaded.
var ErrKeyChanged = errors.New("the claim key Secret holds another key than this process loaded")

// KeepInterval is how often Keep reads the claim key Secret.
const KeepInterval = 10 * time.Second

// Keep holds the claim key Secret name in namespace to key, the key this
// process loaded, until ctx ends (nil) or the Secret holds another key
// (ErrKeyChanged: the process must restart to load it). It reads the
// Secret every interval; one that is gone is created again with key, so
// that a replica that starts meanwhile loads the same key instead of
// making a new one, under which the pool pods it injects could never be
// claimed by the others. When replicas race to create it, the one that
// loses sees another key and restarts: all end with the winner's key. Warm
// pods injected under another refuse the controller's claim; a claim that
// meets one deletes it and tries another. A failed read is logged and
// tried again, and so is a Secret that holds no usable key (it is not
// another key: restarting on it would crash-loop every replica).
func Keep(ctx context.Context, kube kubernetes.Interface, namespace, name string, key Key, interval time.Duration, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s, err := kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			got, ferr := fromSecret(s)
			switch {
			case ferr != nil:
				// An unusable key (an edit gone wrong) is not a new key:
				// restarting on it would put every replica into a crash
				// loop (Load refuses it) and take the webhook down.
				log.Error("the claim key Secret holds no usable key: keeping the key this replica holds", "namespace", namespace, "secret", name, "err", ferr)
			case !hmac.Equal(got, key):
				return fmt.Errorf("claim key Secret %s/%s: %w", namespace, name, ErrKeyChanged)
			}
		case apierrors.IsNotFound(err):
			_, err := kube.CoreV1().Secrets(namespace).Create(ctx, keySecret(namespace, name, key), metav1.CreateOptions{})
			switch {
			case err == nil:
				log.Warn("the claim key Secret was deleted: created it again with the key this replica holds", "namespace", namespace, "secret", name)
			case apierrors.IsAlreadyExists(err):
				// Another replica was first: the next read compares.
			case ctx.Err() == nil:
				log.Error("creating the deleted claim key Secret again", "namespace", namespace, "secret", name, "err", err)
			}
		case ctx.Err() == nil:
			log.Error("reading the claim key Secret", "namespace", namespace, "secret", name, "err", err)
		}
	}
}

// keySecret is the claim key Secret holding key.
func keySecret(namespace, name string, key Key) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{SecretKey: key},
	}
}

func fromSecret(s *corev1.Secret) (Key, error) {
	key := s.Data[SecretKey]
	if len(key) < 16 {
		return nil, errors.New("the claim key Secret " + s.Namespace + "/" + s.Name + " holds no key of at least 16 bytes under \"" + SecretKey + "\"")
	}
	return Key(key), nil
}
