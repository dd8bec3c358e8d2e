package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

// TestSecretCache: a secret, found or not, is read once per ttl however
// often the desired set is recomputed; after ttl it is read again; a
// cancelled read is not remembered; secrets no longer named are dropped.
func TestSecretCache(t *testing.T) {
	t.Parallel()
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reads := map[types.NamespacedName]int{}
	regcred := types.NamespacedName{Namespace: "team", Name: "regcred"}
	missing := types.NamespacedName{Namespace: "team", Name: "missing"}
	c := &secretCache{ttl: time.Minute, clock: clk, get: func(ctx context.Context, nn types.NamespacedName) (*corev1.Secret, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		reads[nn]++
		if nn == missing {
			return nil, errors.New(`secrets "missing" not found`)
		}
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: nn.Name, Namespace: nn.Namespace}}, nil
	}}
	for range 50 { // fifty recomputes within the ttl
		if s, err := c.Get(t.Context(), regcred); err != nil || s.Name != "regcred" {
			t.Fatalf("Get(regcred) = %v, %v", s, err)
		}
		if _, err := c.Get(t.Context(), missing); err == nil {
			t.Fatal("Get(missing) found a secret")
		}
	}
	if reads[regcred] != 1 || reads[missing] != 1 {
		t.Fatalf("reads within the ttl: %v, want one of each", reads)
	}
	clk.SetTime(clk.Now().Add(time.Minute))
	_, _ = c.Get(t.Context(), regcred)
	if reads[regcred] != 2 {
		t.Errorf("after the ttl: %d reads of regcred, want 2", reads[regcred])
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	clk.SetTime(clk.Now().Add(time.Minute))
	if _, err := c.Get(cancelled, regcred); err == nil {
		t.Fatal("a cancelled read succeeded")
	}
	if _, err := c.Get(t.Context(), regcred); err != nil || reads[regcred] != 3 {
		t.Errorf("after a cancelled read: %v, %d reads; want it read again, not the cancellation remembered", err, reads[regcred])
	}
	c.forgetExcept(map[types.NamespacedName]bool{regcred: true})
	if _, ok := c.entries[missing]; ok || len(c.entries) != 1 {
		t.Errorf("entries after forgetExcept: %v, want only regcred", c.entries)
	}
}
