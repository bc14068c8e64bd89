package exchange

// The processes the cluster declared dead, refused if they link again
// until it sees them alive: without it a node whose gossip hangs while
// its links work would relink at once and bring back services the
// cluster withdrew.

import (
	"sync"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// deadSet is safe for concurrent use: links' readers check it.
type deadSet struct {
	mu    sync.Mutex
	procs map[registry.ProcessID]time.Time
}

// deadFor bounds how long a process stays refused without news, and
// maxDeadProcs how many are remembered.
const (
	deadFor      = 10 * time.Minute
	maxDeadProcs = 1024
)

func (d *deadSet) mark(p registry.ProcessID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.procs == nil {
		d.procs = map[registry.ProcessID]time.Time{}
	}
	if len(d.procs) >= maxDeadProcs {
		now := time.Now()
		for q, at := range d.procs {
			if now.Sub(at) > deadFor {
				delete(d.procs, q)
			}
		}
		if len(d.procs) >= maxDeadProcs {
			clear(d.procs)
		}
	}
	d.procs[p] = time.Now()
}

func (d *deadSet) clear(p registry.ProcessID) {
	d.mu.Lock()
	delete(d.procs, p)
	d.mu.Unlock()
}

func (d *deadSet) has(p registry.ProcessID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.procs[p]
	if ok && time.Since(at) > deadFor {
		delete(d.procs, p)
		return false
	}
	return ok
}
