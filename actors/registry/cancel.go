package registry

// Requests whose callers gave up (rules 17 and 31): a cancel envelope
// ends the context of the handler serving the request, or, when the
// request still waits in its service's mailbox, keeps it from running.

import (
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of the table of cancels that arrived before their request's
// handler ran (a peer can send cancels for requests that never come):
// past them the cancel is dropped, and its request, if any, runs to its
// deadline as it would have without one.
const (
	maxCancels           = 65536
	maxCancelsPerProcess = 4096
	// cancelLinger is how long a cancel without a deadline waits for its
	// request; cancelSweepEvery how often an arriving cancel sweeps out
	// those past their time.
	cancelLinger     = time.Minute
	cancelSweepEvery = time.Second
)

type cancelKey struct {
	from Address
	conv uint64
}

// cancelTable is kept by the kernel; every method is safe from any
// goroutine.
type cancelTable struct {
	n       atomic.Int64 // len(early) + len(watched): the hot path skips the lock at 0
	mu      sync.Mutex
	early   map[cancelKey]int64 // cancels for requests not yet served: when to forget them
	perProc map[ProcessID]int   // early cancels by caller process
	watched map[cancelKey]func()
	dropped atomic.Uint64
	swept   int64 // when early was last swept (Unix ns)
}

func newCancelTable() *cancelTable {
	return &cancelTable{early: map[cancelKey]int64{}, perProc: map[ProcessID]int{}, watched: map[cancelKey]func(){}}
}

// arrived records that the caller from gave up on request conv, whose
// deadline (Unix ns, 0 when unknown) bounds how long to remember it.
func (t *cancelTable) arrived(from Address, conv uint64, deadline int64) {
	k := cancelKey{from, conv}
	t.mu.Lock()
	if cancel := t.watched[k]; cancel != nil {
		delete(t.watched, k)
		t.n.Add(-1)
		t.mu.Unlock()
		cancel()
		return
	}
	if _, dup := t.early[k]; dup {
		t.mu.Unlock()
		return
	}
	now := time.Now().UnixNano()
	if len(t.early) >= maxCancels || t.perProc[from.Process] >= maxCancelsPerProcess || now-t.swept > int64(cancelSweepEvery) {
		// Cancels that crossed their answer wait for nothing: forget
		// them at their deadlines, so the table empties and served
		// requests skip its lock again.
		t.sweepLocked(now)
		t.swept = now
	}
	if len(t.early) >= maxCancels || t.perProc[from.Process] >= maxCancelsPerProcess {
		t.mu.Unlock()
		t.dropped.Add(1)
		return
	}
	if deadline == 0 || deadline > now+int64(cancelLinger) {
		deadline = now + int64(cancelLinger)
	}
	t.early[k] = deadline
	t.perProc[from.Process]++
	t.n.Add(1)
	t.mu.Unlock()
}

func (t *cancelTable) sweepLocked(now int64) {
	for k, until := range t.early {
		if until <= now {
			t.forgetLocked(k)
		}
	}
}

func (t *cancelTable) forgetLocked(k cancelKey) {
	delete(t.early, k)
	if t.perProc[k.from.Process]--; t.perProc[k.from.Process] <= 0 {
		delete(t.perProc, k.from.Process)
	}
	t.n.Add(-1)
}

// cancelled reports, forgetting it, whether a cancel came for the
// request before its handler ran.
func (t *cancelTable) cancelled(from Address, conv uint64) bool {
	if t.n.Load() == 0 {
		return false
	}
	k := cancelKey{from, conv}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.early[k]; ok {
		t.forgetLocked(k)
		return true
	}
	if now := time.Now().UnixNano(); len(t.early) > 0 && now-t.swept > int64(cancelSweepEvery) {
		t.sweepLocked(now) // no cancel may come to sweep them
		t.swept = now
	}
	return false
}

// watch arranges for cancel to run when the caller gives up on the
// request (at once when it already has); the returned func ends the
// watch.
func (t *cancelTable) watch(from Address, conv uint64, cancel func()) (unwatch func()) {
	k := cancelKey{from, conv}
	t.mu.Lock()
	if _, ok := t.early[k]; ok {
		t.forgetLocked(k)
		t.mu.Unlock()
		cancel()
		return func() {}
	}
	t.watched[k] = cancel
	t.n.Add(1)
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		if _, ok := t.watched[k]; ok {
			delete(t.watched, k)
			t.n.Add(-1)
		}
		t.mu.Unlock()
	}
}

// cancelArrived records a cancel for a request to one of this process's
// services (rule 31).
func (rt *Kernel) cancelArrived(e *Envelope) { rt.cancels.arrived(e.From, e.Conv, e.Deadline) }

// Cancelled reports whether the caller of a request about to be served
// gave up on it already; the service then does not run it.
func (rt *Kernel) Cancelled(e *Envelope) bool { return rt.cancels.cancelled(e.From, e.Conv) }

// WatchCancel runs cancel when the caller of request e gives up on it,
// until the returned func is called. A service serving a request whose
// handler watches its context uses it.
func (rt *Kernel) WatchCancel(e *Envelope, cancel func()) (unwatch func()) {
	return rt.cancels.watch(e.From, e.Conv, cancel)
}

// sendCancel tells the service a taken call went to that its caller gave
// up, so its handler's context ends (or it never runs).
func (rt *Kernel) sendCancel(pc *pendingCall) {
	if time.Now().UnixNano() >= pc.sent {
		return // its deadline ends it there too, and says why
	}
	e := &Envelope{Kind: KindCancel, To: pc.target, From: pc.from, Conv: pc.conv, Deadline: pc.sent}
	if pc.target.Process == rt.pid {
		rt.cancelArrived(e)
		return
	}
	// After the request, on its link when it still goes there.
	l := pc.via
	if l == nil {
		l = rt.ix.routeTo(pc.target.Process)
	}
	if l != nil {
		_ = l.Send(e) // best effort: a cancel that cannot go leaves the deadline to end it
	}
}
