package registry

// The dispatcher actors run on: a pool of long-lived goroutines.

import (
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// workerDispatcher runs mailboxes on a pool of long-lived goroutines
// instead of protoactor's default of one new goroutine per wake-up.
//
// Why: a fresh goroutine starts with a small stack, and a service
// handler (reflection, the codec) is deep enough to grow it every time;
// profiling the round-trip benchmark showed 37% of CPU in stack copying.
// Workers keep their grown stacks. Semantics do not change: protoactor
// still runs at most one mailbox loop per actor at a time.
//
// Idle workers form a stack: work goes to the one that went idle last,
// so after a burst the others stay idle and leave after idleTimeout, and
// the pool shrinks back to what the load needs.
type workerDispatcher struct {
	mu          sync.Mutex
	idle        []*worker // most recently idle last
	throughput  int
	idleTimeout time.Duration
}

type worker struct{ work chan func() }

func newWorkerDispatcher(throughput int) *workerDispatcher {
	return &workerDispatcher{throughput: throughput, idleTimeout: 10 * time.Second}
}

var _ actor.Dispatcher = (*workerDispatcher)(nil)

// Schedule hands fn to the most recently idle worker, or starts one when
// all are busy, so a mailbox never waits for another to finish.
func (d *workerDispatcher) Schedule(fn func()) {
	d.mu.Lock()
	if n := len(d.idle); n > 0 {
		w := d.idle[n-1]
		d.idle = d.idle[:n-1]
		d.mu.Unlock()
		w.work <- fn // buffered: the worker is waiting, or about to
		return
	}
	d.mu.Unlock()
	go d.run(&worker{work: make(chan func(), 1)}, fn)
}

func (d *workerDispatcher) Throughput() int { return d.throughput }

func (d *workerDispatcher) run(w *worker, fn func()) {
	timer := time.NewTimer(d.idleTimeout)
	defer timer.Stop()
	for {
		fn()
		d.mu.Lock()
		d.idle = append(d.idle, w)
		d.mu.Unlock()
		timer.Reset(d.idleTimeout)
		select {
		case fn = <-w.work:
		case <-timer.C:
			d.mu.Lock()
			if i := slices.Index(d.idle, w); i >= 0 {
				d.idle = slices.Delete(d.idle, i, i+1)
				d.mu.Unlock()
				return // idle long enough: the pool shrinks
			}
			d.mu.Unlock()
			fn = <-w.work // taken off the stack just now: its work is coming
		}
	}
}
