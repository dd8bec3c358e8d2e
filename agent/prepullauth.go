package agent

import (
	"context"
	"fmt"
	"time"

	"k8s.io/utils/clock"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"sandbox.io/injector/prepuller"
)

// SecretGetter reads one Secret.
type SecretGetter func(ctx context.Context, nn types.NamespacedName) (*corev1.Secret, error)

// ResolveAuth turns the desired set into the puller's images, with the
// credentials of each image's pull secrets. A secret that cannot be read,
// or credentials that cannot be parsed, are reported in problems (one line
// each, naming the secret and the image) and the image is pulled with what
// could be read (anonymously when nothing could): never fatal. Each secret
// is read once.
func ResolveAuth(ctx context.Context, wanted []WantedImage, get SecretGetter) (images []prepuller.Image, problems []string) {
	type result struct {
		secret *corev1.Secret
		err    error
	}
	read := map[types.NamespacedName]result{}
	reported := map[types.NamespacedName]bool{}
	for _, w := range wanted {
		var secrets []*corev1.Secret
		for _, nn := range w.PullSecrets {
			r, ok := read[nn]
			if !ok {
				s, err := get(ctx, nn)
				r = result{s, err}
				read[nn] = r
			}
			if r.err != nil {
				if !reported[nn] {
					reported[nn] = true
					problems = append(problems, fmt.Sprintf("pull secret %s (for %s): %v", nn, w.Ref, r.err))
				}
				continue
			}
			secrets = append(secrets, r.secret)
		}
		img := prepuller.Image{Ref: w.Ref}
		if len(secrets) > 0 {
			auth, err := prepuller.AuthFor(w.Ref, secrets)
			if err != nil {
				problems = append(problems, fmt.Sprintf("pull secrets of %s: %v", w.Ref, err))
			} else {
				img.Auth = auth
			}
		}
		images = append(images, img)
	}
	return images, problems
}

// secretCache remembers the pull secrets the pre-pull loop read, for ttl:
// the desired set is recomputed on every change the loop sees (with
// learning on, every pod event), and reading each secret from the API
// server every time would cost every agent a request per secret per
// second. A changed secret is picked up within ttl.
type secretCache struct {
	get   SecretGetter
	ttl   time.Duration
	clock clock.PassiveClock

	entries map[types.NamespacedName]cachedSecret
}

type cachedSecret struct {
	secret *corev1.Secret
	err    error
	at     time.Time
}

// Get returns the secret as last read, reading it again when that was more
// than ttl ago. Failures are remembered too, so a missing secret is not
// asked for on every recompute.
func (c *secretCache) Get(ctx context.Context, nn types.NamespacedName) (*corev1.Secret, error) {
	now := c.clock.Now()
	if e, ok := c.entries[nn]; ok && now.Sub(e.at) < c.ttl {
		return e.secret, e.err
	}
	s, err := c.get(ctx, nn)
	if ctx.Err() != nil {
		return s, err // a cancelled read says nothing about the secret
	}
	if c.entries == nil {
		c.entries = map[types.NamespacedName]cachedSecret{}
	}
	c.entries[nn] = cachedSecret{secret: s, err: err, at: now}
	return s, err
}

// forgetExcept drops the secrets not in keep, so the cache holds only what
// the desired set still names.
func (c *secretCache) forgetExcept(keep map[types.NamespacedName]bool) {
	for nn := range c.entries {
		if !keep[nn] {
			delete(c.entries, nn)
		}
	}
}
