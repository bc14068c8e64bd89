package registry

// Draining: a process about to stop withdraws its services everywhere
// while its links stay up, lets the requests it took finish and answers
// later ones "withdrawn, not run", so their callers go elsewhere.

import (
	"context"
	"time"
)

type (
	regDrain struct{ done chan struct{} }
	regAvoid struct{ link Link }
)

// AvoidLink tells the registry the peer on link is draining: calls and
// replies take any other path there is to what lies behind it, and use
// the link only when none is left, until it goes.
func (k *Kernel) AvoidLink(link Link) { k.sys.Root.Send(k.registry, &regAvoid{link: link}) }

// Drain withdraws every service of this process from the registry, and
// so from every peer, while the services keep running: new calls by name
// find other instances, and requests that still arrive over a link are
// answered CodeWithdrawn, not run (rule 17). Requests already taken
// (queued or running) are not failed: WaitIdle waits for them. Services
// started later are not announced. It returns once the withdrawals are
// on their way to the exchanges; draining cannot be undone.
func (k *Kernel) Drain() {
	if k.draining.Swap(true) {
		return
	}
	done := make(chan struct{})
	k.sys.Root.Send(k.registry, &regDrain{done: done})
	select {
	case <-done:
	case <-time.After(k.cfg.StopTimeout):
	}
}

// Draining reports whether Drain was called.
func (k *Kernel) Draining() bool { return k.draining.Load() }

// drain withdraws the bindings of local services without failing the
// calls waiting on them: those services still answer.
func (r *registry) drain() {
	for _, e := range sortedEntries(r.ix.byAddr) {
		if e.local != nil {
			r.withdraw(e, CodeWithdrawn, true)
		}
	}
}

// WaitIdle returns once every named local service has been seen with
// no request queued or running and no delayed request unanswered, each
// at least once since the call began (after Drain, no request from a
// link gets in any more), or ctx ends. It reports how many services
// were still busy then.
func (k *Kernel) WaitIdle(ctx context.Context) (busy int) {
	seen := map[*Local]bool{}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		busy = 0
		k.ix.mu.RLock()
		for _, l := range k.ix.locals {
			if l.name == "" || seen[l] {
				continue
			}
			if l.mb.cur.Load() == 0 && l.mb.UserMessageCount() == 0 && l.delayed.Load() == 0 {
				seen[l] = true
				continue
			}
			busy++
		}
		k.ix.mu.RUnlock()
		if busy == 0 {
			return 0
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return busy
		}
	}
}
