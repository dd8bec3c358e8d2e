package claimkey_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
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
// deleted, is created again with the keys the process holds, so that a
// replica starting afterwards loads them; a rotation (another current key,
// the old one as previous) switches the ring in place and tells its
// subscribers; every read that finds usable keys confirms them, one that
// finds none changes nothing and confirms nothing (an error at every read);
// an unusable previous key is logged once per version of the Secret; the
// end of its context ends it.
func TestKeep(t *testing.T) {
	cfg := testenv.Start(t, &envtest.Environment{})
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const ns, name = "default", "claim-key"
	ctx := t.Context()
	keys, err := claimkey.Load(ctx, kube, ns, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Current) != claimkey.KeyBytes || keys.Previous != nil {
		t.Fatalf("first Load made %s, want one new key of %d bytes", keys, claimkey.KeyBytes)
	}
	ring := claimkey.NewRing(keys)
	if c := ring.Confirmed(); !c.IsZero() {
		t.Fatalf("a new ring is confirmed (at %s) before any read by Keep", c.Format(time.RFC3339Nano))
	}
	changed := ring.Subscribe()
	kctx, stop := context.WithCancel(ctx)
	defer stop()
	kept := make(chan struct{})
	var logged testenv.SyncBuffer
	go func() {
		defer close(kept)
		claimkey.Keep(kctx, kube, ns, name, ring, 100*time.Millisecond, slog.New(slog.NewTextHandler(&logged, nil)))
	}()

	// Deleted: back with the same key, which a replica starting now loads.
	if err := kube.CoreV1().Secrets(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the claim key Secret created again", func() error {
		_, err := kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	loaded, err := claimkey.Load(ctx, kube, ns, name, nil)
	if err != nil || !loaded.Equal(keys) {
		t.Fatalf("a replica starting after the deletion loaded %s (%v), want %s: the pods it injects could not be claimed", loaded, err, keys)
	}

	// A rotation: the ring follows without a restart, and says so.
	next, err := claimkey.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	update := func(data map[string][]byte) {
		t.Helper()
		s, err := kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Data = data
		if _, err := kube.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	update(map[string][]byte{claimkey.SecretKey: next, claimkey.SecretKeyPrevious: keys.Current})
	waitChanged(t, changed, "the rotated Secret")
	rotated := claimkey.Keys{Current: next, Previous: keys.Current}
	if got := ring.Keys(); !got.Equal(rotated) {
		t.Fatalf("after the rotation the ring holds %s, want %s", got, rotated)
	}

	// Reads that find the same keys confirm them.
	since := time.Now()
	testenv.Eventually(t, 10*time.Second, "the unchanged keys confirmed by a later read", func() error {
		if c := ring.Confirmed(); !c.After(since) {
			return fmt.Errorf("confirmed at %s, not after %s", c.Format(time.RFC3339Nano), since.Format(time.RFC3339Nano))
		}
		return nil
	})

	// No usable key (an edit gone wrong): the ring keeps its keys, no
	// longer confirmed.
	update(map[string][]byte{claimkey.SecretKey: []byte("short")})
	time.Sleep(300 * time.Millisecond) // a read or more that may predate the edit
	lastConfirmed := ring.Confirmed()
	time.Sleep(500 * time.Millisecond)
	if got := ring.Keys(); !got.Equal(rotated) {
		t.Fatalf("a Secret with no usable key changed the ring to %s", got)
	}
	if got := ring.Confirmed(); !got.Equal(lastConfirmed) {
		t.Fatalf("reads of a Secret with no usable key confirmed the ring's keys (at %s)", got.Format(time.RFC3339Nano))
	}
	select {
	case <-changed:
		t.Fatal("a Secret with no usable key told the subscribers of a change")
	default:
	}
	if n := logged.CountLines("holds no usable key"); n < 2 {
		t.Errorf("reads of a Secret with no usable key logged it %d times, want at every read:\n%s", n, logged.String())
	}
	// An unusable previous key is left out; the current one is followed.
	update(map[string][]byte{claimkey.SecretKey: next, claimkey.SecretKeyPrevious: []byte("short")})
	waitChanged(t, changed, "a Secret with an unusable previous key")
	if got := ring.Keys(); !bytes.Equal(got.Current, next) || got.Previous != nil {
		t.Fatalf("with an unusable previous key the ring holds %s, want the current key alone", got)
	}
	time.Sleep(500 * time.Millisecond) // more reads of the same Secret
	if n := logged.CountLines("previous key is unusable"); n != 1 {
		t.Errorf("reads of one Secret with an unusable previous key logged it %d times, want once:\n%s", n, logged.String())
	}
	update(map[string][]byte{claimkey.SecretKey: next, claimkey.SecretKeyPrevious: keys.Current})
	waitChanged(t, changed, "the previous key put back")
	// Another version with an unusable previous key is said again.
	update(map[string][]byte{claimkey.SecretKey: next, claimkey.SecretKeyPrevious: []byte("short again")})
	waitChanged(t, changed, "a second Secret with an unusable previous key")
	time.Sleep(500 * time.Millisecond)
	if n := logged.CountLines("previous key is unusable"); n != 2 {
		t.Errorf("two versions of the Secret with an unusable previous key logged it %d times, want twice:\n%s", n, logged.String())
	}
	update(map[string][]byte{claimkey.SecretKey: next, claimkey.SecretKeyPrevious: keys.Current})
	waitChanged(t, changed, "the previous key put back again")

	// The previous key dropped: the ring holds the current one only.
	update(map[string][]byte{claimkey.SecretKey: next})
	waitChanged(t, changed, "the dropped previous key")
	if got := ring.Keys(); !bytes.Equal(got.Current, next) || got.Previous != nil {
		t.Fatalf("after the previous key was dropped the ring holds %s", got)
	}

	// Its context's end ends it.
	stop()
	select {
	case <-kept:
	case <-time.After(5 * time.Second):
		t.Fatal("Keep did not end with its context")
	}
}

// TestLoadUnusableKeys: a Secret whose current key is too short is refused
// with a message naming the Secret's key; one whose previous key is too
// short loads its current key alone (refusing it would stop every replica
// that starts, and the webhook with them, for a key only old warm pods
// need).
func TestLoadUnusableKeys(t *testing.T) {
	cfg := testenv.Start(t, &envtest.Environment{})
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	good := []byte("0123456789abcdef0123456789abcdef")
	for name, data := range map[string]map[string][]byte{
		"short-current":  {claimkey.SecretKey: []byte("short")},
		"short-previous": {claimkey.SecretKey: good, claimkey.SecretKeyPrevious: []byte("short")},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Data: data}
		if _, err := kube.CoreV1().Secrets("default").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want := `"` + claimkey.SecretKey + `"`
	if _, err := claimkey.Load(ctx, kube, "default", "short-current", nil); err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Errorf("short current key: Load said %v, want a refusal naming %s", err, want)
	}
	var logged bytes.Buffer
	keys, err := claimkey.Load(ctx, kube, "default", "short-previous", slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil || !bytes.Equal(keys.Current, good) || keys.Previous != nil {
		t.Errorf("short previous key: Load gave %s, %v; want the current key alone", keys, err)
	}
	if !bytes.Contains(logged.Bytes(), []byte(`\"`+claimkey.SecretKeyPrevious+`\"`)) {
		t.Errorf("short previous key: the log names no %q: %s", claimkey.SecretKeyPrevious, logged.String())
	}
}

// waitChanged waits until the ring tells changed of a change, after
// Keep read the Secret updated to what.
func waitChanged(t *testing.T, changed <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("the ring did not follow " + what)
	}
}
