package agent

import (
	"context"
	"fmt"

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
