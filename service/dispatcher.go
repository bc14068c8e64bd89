package service

import (
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
type workerDispatcher struct {
	work       chan func()
	throughput int
	idle       time.Duration
}

func newWorkerDispatcher(throughput int) *workerDispatcher {
	return &workerDispatcher{work: make(chan func()), throughput: throughput, idle: 10 * time.Second}
}

var _ actor.Dispatcher = (*workerDispatcher)(nil)

// Schedule hands fn to an idle worker, or starts one when all are busy,
// so a mailbox never waits for another to finish.
func (d *workerDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	default:
		go d.worker(fn)
	}
}

func (d *workerDispatcher) Throughput() int { return d.throughput }

func (d *workerDispatcher) worker(fn func()) {
	idle := time.NewTimer(d.idle)
	defer idle.Stop()
	for {
		fn()
		idle.Reset(d.idle)
		select {
		case fn = <-d.work:
		case <-idle.C:
			return // shrink the pool when the load goes away
		}
	}
}
