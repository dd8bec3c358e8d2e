package claimkey_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"sandbox.io/injector/internal/claimkey"
	"sandbox.io/injector/internal/testenv"
)

// TestKeep runs Keep against a real API server: the claim key Secret,
// deleted, is created again with the key the process holds, so that a
// replica starting afterwards loads that key; a Secret that holds another
// key ends Keep with ErrKeyChanged, one with no usable key does not; the
// end of its context ends it with nil.
func TestKeep(t *testing.T) {
	cfg := testenv.Start(t, &envtest.Environment{})
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const ns, name = "default", "claim-key"
	ctx := t.Context()
	key, err := claimkey.Load(ctx, kube, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	kept := make(chan error, 1)
	kctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { kept <- claimkey.Keep(kctx, kube, ns, name, key, 100*time.Millisecond, nil) }()

	// Deleted: back with the same key, which a replica starting now loads.
	if err := kube.CoreV1().Secrets(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the claim key Secret created again", func() error {
		_, err := kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	loaded, err := claimkey.Load(ctx, kube, ns, name)
	if err != nil || !bytes.Equal(loaded, key) {
		t.Fatalf("a replica starting after the deletion loaded another key (%v): the pods it injects could not be claimed", err)
	}
	select {
	case err := <-kept:
		t.Fatalf("Keep ended with the Secret back to its key: %v", err)
	case <-time.After(300 * time.Millisecond):
	}

	// No usable key (an edit gone wrong): Keep goes on with its key
	// rather than restarting into Load's refusal, a crash loop.
	broken, err := kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	broken.Data[claimkey.SecretKey] = []byte("short")
	if _, err := kube.CoreV1().Secrets(ns).Update(ctx, broken, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-kept:
		t.Fatalf("Keep ended on a Secret with no usable key: %v", err)
	case <-time.After(500 * time.Millisecond):
	}

	// Another key (another replica won the race to create it, or an
	// operator rotated it): Keep ends, so that the process restarts.
	if err := kube.CoreV1().Secrets(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Data: map[string][]byte{claimkey.SecretKey: []byte("another-key-0123456789abcdef0123")}}
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-kept:
		if !errors.Is(err, claimkey.ErrKeyChanged) {
			t.Fatalf("Keep with another key in the Secret: %v, want ErrKeyChanged", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Keep did not end with another key in the Secret")
	}

	// Its context's end ends it quietly.
	go func() {
		kept <- claimkey.Keep(kctx, kube, ns, name, other.Data[claimkey.SecretKey], 100*time.Millisecond, nil)
	}()
	stop()
	select {
	case err := <-kept:
		if err != nil {
			t.Fatalf("Keep after its context ended: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Keep did not end with its context")
	}
}
