package registry

// Local: what the kernel knows of a service of this process.

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// Local is what the registry and the router know of a local agent.
type Local struct {
	id       uint64
	seq      uint64 // the order services started in (ids are random)
	addr     Address
	name     string
	audience string
	groups   []string // the agent's until it is registered, then the registry's
	hidden   atomic.Bool
	pid      *actor.PID
	// interests is the agent's latest snapshot for the console.
	interests atomic.Pointer[Interest]
	// mb is the service actor's mailbox, which counts the bytes waiting
	// in it; dropped counts the envelopes its limit dropped, refused the
	// requests the limits turned away (queue, delayed requests).
	mb               *serviceMailbox
	dropped, refused atomic.Uint64
	delayed          atomic.Int64  // requests delayed and not answered yet
	restarts         atomic.Uint64 // restarts after a panic (RestartOnPanic)
	servingUntil     atomic.Int64  // the deadline of the request being served (Unix ns), for the console
	methods          methodTable   // what each exported method served
	done             chan struct{} // closed once the actor has stopped
}

// Restarted counts a restart of the service after a panic in one of its
// handlers; the console shows the count.
func (l *Local) Restarted() { l.restarts.Add(1) }

// DisplayName is how a service's name reads in logs and the console:
// "anonymous" for a service without one.
func DisplayName(name string) string {
	if name == "" {
		return "anonymous"
	}
	return name
}
