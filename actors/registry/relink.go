package registry

// Calls made while this process relinks to its server (rule 13): a call
// by name that finds nothing waits for the resync, at most one retry
// delay and within its own deadline, rather than failing at once with
// "no such service" for a service that is about to come back.

import (
	"context"
	"sync"
	"time"
)

type relinkState struct {
	mu    sync.Mutex
	until time.Time     // waits end by then; zero when linked
	wake  chan struct{} // closed at the next resync
}

// Relinking says a client endpoint of this process has no link and is
// dialling: calls by name that find nothing may wait up to wait for it.
func (rt *Kernel) Relinking(wait time.Duration) {
	r := &rt.relink
	r.mu.Lock()
	r.until = time.Now().Add(wait)
	if r.wake == nil {
		r.wake = make(chan struct{})
	}
	r.mu.Unlock()
}

// Relinked says the endpoint is linked and synced again: waiting calls
// look again at once.
func (rt *Kernel) Relinked() {
	r := &rt.relink
	r.mu.Lock()
	r.until = time.Time{}
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
	r.mu.Unlock()
}

// awaitRelink waits, while the process relinks, for the resync, the
// bound or ctx; otherwise it returns at once.
func (rt *Kernel) awaitRelink(ctx context.Context) {
	r := &rt.relink
	r.mu.Lock()
	until, wake := r.until, r.wake
	r.mu.Unlock()
	left := time.Until(until)
	if until.IsZero() || left <= 0 || wake == nil {
		return
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-ctx.Done():
	}
}
