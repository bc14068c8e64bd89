package connection

// Backpressure hop by hop: a relay waits, briefly, for room on a link
// that drains, rather than dropping what its publisher could not know was
// too much.

import (
	"time"
)

// A relaying reader waits at most relayWait per read for room on
// draining links; a write that has taken longer than stallAfter means its
// peer is not keeping up. Variables so tests can stretch them.
var (
	relayWait  = 20 * time.Millisecond
	stallAfter = 50 * time.Millisecond
)

// awaitRoom holds a relaying reader back while the queue has no room for
// n more bytes but is draining. The reader's own socket then goes unread,
// TCP slows the link upstream, its queue fills and its publisher is told
// to pause (Publish returns overloaded): backpressure hop by hop, rather
// than a relay dropping reports the publisher had no way to know were
// too many. A queue whose writer is stuck (a peer that stopped reading)
// is not waited on: its limits apply as before (reports drop oldest
// first, requests are refused).
//
// The wait ends at *deadline, which the first wait of a read sets
// relayWait ahead (0: not set yet): everything else the incoming link
// carries is held up for no longer than that per read: once it has
// passed, later calls in the same read return at once. awaitRoom reports
// false when it gave up at the deadline.
func (q *outQueue) awaitRoom(n int, deadline *int64) bool {
	if n > q.soft {
		return true // no room will do: the queue's limits decide
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.closed && q.live+q.inflight >= q.soft {
		now := nanotime()
		if q.writing && now-q.writeStart > int64(stallAfter) {
			return true
		}
		if *deadline == 0 {
			*deadline = now + int64(relayWait)
		} else if now >= *deadline {
			return false
		}
		room := q.roomSignal()
		q.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Duration(*deadline - now))
		} else {
			timer.Reset(time.Duration(*deadline - now))
		}
		select {
		case <-room:
		case <-timer.C:
		}
		q.mu.Lock()
	}
	return true
}

// roomSignal returns, locked, the channel roomFreed closes next.
func (q *outQueue) roomSignal() <-chan struct{} {
	if q.roomWait == nil {
		q.roomWait = make(chan struct{})
	}
	return q.roomWait
}

// roomFreed wakes, locked, those waiting in awaitRoom and awaitCallerRoom.
func (q *outQueue) roomFreed() {
	if q.roomWait != nil {
		close(q.roomWait)
		q.roomWait = nil
	}
}

// awaitCallerRoom holds a synchronous caller whose request found the
// queue full until a request fits again, as a client library blocks a
// caller on its full buffer: 64 callers of 16 KiB each fill the 1 MiB
// soft limit, and failing the last of them "overloaded" while the link
// drains at full speed would make the caller's own concurrency its
// error. It returns after the queue made progress (a write ended,
// reports were dropped) or a stallAfter tick passed, so a caller that
// retries and is refused again waits again rather than spinning. It
// gives up (false) at until, when the link closes, or when the writer is
// stuck (a peer that stopped reading: the request fails "overloaded" as
// before, after stallAfter).
func (q *outQueue) awaitCallerRoom(until time.Time) bool {
	deadline := time.NewTimer(time.Until(until))
	defer deadline.Stop()
	tick := time.NewTicker(stallAfter / 2)
	defer tick.Stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	for waited := false; ; {
		if q.closed || (q.writing && nanotime()-q.writeStart > int64(stallAfter)) {
			return false
		}
		if waited && q.live+q.inflight < q.soft && !q.dropping {
			return true
		}
		room := q.roomSignal()
		q.mu.Unlock()
		select {
		case <-room:
		case <-tick.C:
		case <-deadline.C:
			q.mu.Lock()
			return false
		}
		waited = true
		q.mu.Lock()
	}
}
