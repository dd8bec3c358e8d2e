package certs

import "context"

// SyncOnce runs one pass of the sync loop, for tests that force races.
func (r *Rotator) SyncOnce(ctx context.Context) error { return r.sync(ctx) }

// ErrLostRace is what a pass returns after another writer won.
var ErrLostRace = errRetry
