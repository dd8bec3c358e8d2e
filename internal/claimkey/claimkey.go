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
//
// The Secret holds the current key, under which new pool pods are
// injected, and may hold the previous one, under which the warm pods made
// before a rotation stay claimable. Every process holds both in a Ring and
// follows the Secret (Keep) without restarting; the controller picks the key
// of a pod by its runner's verifier (Ring.Credential), so a pod injected
// under a key it does not hold is never handed a wrong credential.
package claimkey

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// SecretKey is the key, inside the claim key Secret, that holds the
// current key.
const SecretKey = "key"

// SecretKeyPrevious is the key, inside the claim key Secret, that holds
// the key before the last rotation (optional).
const SecretKeyPrevious = "previous"

// MinKeyBytes is the shortest key the Secret may hold.
const MinKeyBytes = 16

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

// ID names a key in logs and metrics without revealing it: the first 12
// hex digits of the SHA-256 of a fixed label and the key.
func (k Key) ID() string {
	sum := sha256.Sum256(append([]byte("sandbox.io claim key id\x00"), k...))
	return hex.EncodeToString(sum[:6])
}

// Keys are the claim keys of a release: Current, under which new pool pods
// are injected, and Previous (nil when there is none), whose warm pods stay
// claimable after a rotation.
type Keys struct {
	Current, Previous Key
}

// Equal reports whether k and o hold the same keys.
func (k Keys) Equal(o Keys) bool {
	return hmac.Equal(k.Current, o.Current) && hmac.Equal(k.Previous, o.Previous)
}

// String names the keys by their IDs.
func (k Keys) String() string {
	s := "current " + k.Current.ID()
	if k.Previous != nil {
		s += ", previous " + k.Previous.ID()
	}
	return s
}

// Ring holds a process's claim keys and switches them in place; it is safe
// for concurrent use. The zero Ring holds no key.
type Ring struct {
	keys atomic.Pointer[Keys]
	// confirmed is when the keys were last set (UnixNano): Keep sets them
	// after every read of the Secret, changed or not, as of when it asked.
	confirmed atomic.Int64
	mu        sync.Mutex // guards subs
	subs      []chan<- struct{}
}

// NewRing is a Ring holding keys, not confirmed yet (Confirmed): a ring
// made from Load's keys is confirmed by Keep's first read, which knows when
// it asked.
func NewRing(keys Keys) *Ring {
	r := &Ring{}
	r.keys.Store(&keys)
	return r
}

// Confirmed is when the ring's keys were last set (Set): for a ring that
// Keep follows, when it last asked for the Secret and found it holding
// them (the Secret was read no earlier). The zero time until then.
func (r *Ring) Confirmed() time.Time {
	if n := r.confirmed.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Keys are the keys the ring holds now.
func (r *Ring) Keys() Keys {
	if k := r.keys.Load(); k != nil {
		return *k
	}
	return Keys{}
}

// Verifier is the verifier of the pod with nonce in namespace under the
// current key: what the webhook gives a new pool pod's runner.
func (r *Ring) Verifier(namespace, nonce string) string {
	return r.Keys().Current.Verifier(namespace, nonce)
}

// Credential is the credential of the pod with nonce in namespace whose
// runner holds verifier, under whichever held key verifier was made with;
// false when it was made with none of them (injected under a key this
// process does not hold, or not a verifier of this nonce).
func (r *Ring) Credential(namespace, nonce, verifier string) (string, bool) {
	keys := r.Keys()
	for _, k := range []Key{keys.Current, keys.Previous} {
		if len(k) == 0 {
			continue
		}
		cred := k.Credential(namespace, nonce)
		if hmac.Equal([]byte(TokenVerifier(cred)), []byte(verifier)) {
			return cred, true
		}
	}
	return "", false
}

// Set makes the ring hold keys, confirmed now; it reports whether they
// differ from those it held, and then tells every subscriber.
func (r *Ring) Set(keys Keys) bool {
	return r.set(keys, time.Now())
}

// set is Set with the keys confirmed at: for Keep, when it asked for the
// Secret, so that the Secret was read no earlier than that, however long
// the answer took.
func (r *Ring) set(keys Keys, at time.Time) bool {
	old := r.keys.Swap(&keys)
	r.confirmed.Store(at.UnixNano())
	if old != nil && old.Equal(keys) {
		return false
	}
	r.mu.Lock()
	subs := r.subs
	r.mu.Unlock()
	for _, c := range subs {
		select {
		case c <- struct{}{}:
		default: // a change is already waiting to be seen
		}
	}
	return true
}

// Subscribe returns a channel that receives a value after the keys change
// (changes in quick succession may come as one).
func (r *Ring) Subscribe() <-chan struct{} {
	c := make(chan struct{}, 1)
	r.mu.Lock()
	r.subs = append(r.subs, c)
	r.mu.Unlock()
	return c
}

// OnChange calls f after each change of the keys (changes in quick
// succession may make one call) until ctx ends, in a goroutine of its own.
func (r *Ring) OnChange(ctx context.Context, f func()) {
	changed := r.Subscribe()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				f()
			}
		}
	}()
}

// Load reads the keys from the Secret name in namespace, creating the
// Secret with a random current key when it does not exist. Replicas that
// race to create it all end with the one that won. An unusable previous
// key is left out and logged to log (nil: discarded).
func Load(ctx context.Context, kube kubernetes.Interface, namespace, name string, log *slog.Logger) (Keys, error) {
	for range 3 {
		s, err := kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			keys, ignored, err := fromSecret(s)
			if ignored != nil && log != nil {
				log.Warn("the claim key Secret's previous key is unusable", "err", ignored)
			}
			return keys, err
		}
		if !apierrors.IsNotFound(err) {
			return Keys{}, fmt.Errorf("reading the claim key Secret %s/%s: %w", namespace, name, err)
		}
		key, err := NewKey()
		if err != nil {
			return Keys{}, err
		}
		keys := Keys{Current: key}
		_, err = kube.CoreV1().Secrets(namespace).Create(ctx, keySecret(namespace, name, keys), metav1.CreateOptions{})
		if err == nil {
			return keys, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return Keys{}, fmt.Errorf("creating the claim key Secret %s/%s: %w", namespace, name, err)
		}
	}
	return Keys{}, fmt.Errorf("reading the claim key Secret %s/%s: it keeps appearing and disappearing", namespace, name)
}

// NewKey returns a random key of KeyBytes.
func NewKey() (Key, error) {
	key := make(Key, KeyBytes)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generating a claim key: %w", err)
	}
	return key, nil
}

// KeepInterval is how often Keep reads the claim key Secret.
const KeepInterval = 10 * time.Second

// Keep makes ring follow the claim key Secret name in namespace until ctx
// ends: it reads the Secret every interval and switches the ring to the
// keys it holds (a rotation), without a restart. A Secret that is gone is
// created again with the ring's keys, so that a replica that starts
// meanwhile loads them instead of making a new key, under which the pool
// pods it injects could not be claimed by the others. A failed read is
// logged and tried again, and so is a Secret that holds no usable key: the
// ring keeps the keys it holds, unconfirmed (Ring.Confirmed) until a read
// finds usable keys again (an error logged at every read, the only sign of
// it). An unusable previous key, which only keeps its warm pods from being
// claimed, is logged once per version of the Secret.
func Keep(ctx context.Context, kube kubernetes.Interface, namespace, name string, ring *Ring, interval time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	// The Secret version whose unusable previous key was logged.
	var saidPrevious string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		asked := time.Now()
		s, err := kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			keys, ignored, ferr := fromSecret(s)
			if ignored != nil && s.ResourceVersion != saidPrevious {
				saidPrevious = s.ResourceVersion
				log.Warn("the claim key Secret's previous key is unusable", "namespace", namespace, "secret", name, "err", ignored)
			}
			if ferr != nil {
				log.Error("the claim key Secret holds no usable key: keeping the keys this replica holds", "namespace", namespace, "secret", name, "keys", ring.Keys().String(), "err", ferr)
				continue
			}
			if old := ring.Keys(); ring.set(keys, asked) {
				msg := "claim keys changed: new pool pods are injected under the current key, warm pods of either key are claimed"
				if keys.Previous == nil {
					msg = "claim keys changed: new pool pods are injected under the current key, warm pods of any other key are not claimed"
				}
				log.Info(msg, "namespace", namespace, "secret", name, "keys", keys.String(), "before", old.String())
			}
		case apierrors.IsNotFound(err):
			_, err := kube.CoreV1().Secrets(namespace).Create(ctx, keySecret(namespace, name, ring.Keys()), metav1.CreateOptions{})
			switch {
			case err == nil:
				log.Warn("the claim key Secret was deleted: created it again with the keys this replica holds", "namespace", namespace, "secret", name, "keys", ring.Keys().String())
			case apierrors.IsAlreadyExists(err):
				// Another replica was first: the next read follows it.
			case ctx.Err() == nil:
				log.Error("creating the deleted claim key Secret again", "namespace", namespace, "secret", name, "err", err)
			}
		case ctx.Err() == nil:
			log.Error("reading the claim key Secret", "namespace", namespace, "secret", name, "err", err)
		}
	}
}

// keySecret is the claim key Secret holding keys.
func keySecret(namespace, name string, keys Keys) *corev1.Secret {
	data := map[string][]byte{SecretKey: keys.Current}
	if keys.Previous != nil {
		data[SecretKeyPrevious] = keys.Previous
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// fromSecret reads the keys of a claim key Secret: a current key of at
// least MinKeyBytes (err otherwise), and a previous one when present. An
// unusable previous key is left out and said in ignored: it only keeps the
// warm pods of before a rotation claimable, and refusing the Secret for it
// would stop every replica that starts meanwhile (Load fails), the webhook
// with it.
func fromSecret(s *corev1.Secret) (keys Keys, ignored, err error) {
	where := "the claim key Secret " + s.Namespace + "/" + s.Name
	cur := s.Data[SecretKey]
	if len(cur) < MinKeyBytes {
		return Keys{}, nil, fmt.Errorf("%s holds no key of at least %d bytes under %q", where, MinKeyBytes, SecretKey)
	}
	keys = Keys{Current: Key(cur)}
	if prev, ok := s.Data[SecretKeyPrevious]; ok && len(prev) > 0 {
		if len(prev) < MinKeyBytes {
			return keys, fmt.Errorf("%s holds under %q a key of %d bytes, under the %d required: left out (warm pods made under the previous key are not claimed)", where, SecretKeyPrevious, len(prev), MinKeyBytes), nil
		}
		if !hmac.Equal(prev, cur) {
			keys.Previous = Key(prev)
		}
	}
	return keys, nil, nil
}
