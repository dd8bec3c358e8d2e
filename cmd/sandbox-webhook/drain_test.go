package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"sandbox.io/injector/webhook"
)

// TestDrainAfterSignal: when the signal's context ends, the webhook starts
// draining at once and the manager's context ends only after the delay; with
// no delay the manager stops with the signal.
func TestDrainAfterSignal(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	signalled, signal := context.WithCancel(context.Background())
	drain := &webhook.Drain{}
	const delay = 300 * time.Millisecond
	run := drainAfter(signalled, drain, delay, log)
	if drain.Draining() || run.Err() != nil {
		t.Fatal("draining or stopped before the signal")
	}
	start := time.Now()
	signal()
	deadline := time.Now().Add(5 * time.Second)
	for !drain.Draining() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !drain.Draining() {
		t.Fatal("not draining after the signal")
	}
	if run.Err() != nil && time.Since(start) < delay {
		t.Fatalf("the manager's context ended %s after the signal, before the %s delay", time.Since(start), delay)
	}
	<-run.Done()
	if took := time.Since(start); took < delay {
		t.Errorf("the manager's context ended %s after the signal, want at least %s", took, delay)
	}

	now, stop := context.WithCancel(context.Background())
	undelayed := drainAfter(now, &webhook.Drain{}, 0, log)
	stop()
	select {
	case <-undelayed.Done():
	case <-time.After(5 * time.Second):
		t.Error("with no delay, the manager's context outlived the signal")
	}
}
