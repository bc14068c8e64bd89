package node

// The ordered drain of Stop (rules 11, 17).

import (
	"context"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// drain runs steps 1 to 3 of Stop: no new links, services withdrawn,
// clients moved, running requests finished, up to the drain timeout.
func (n *Node) drain(ctx context.Context, timeout time.Duration) {
	if n.draining.Swap(true) {
		return
	}
	begun := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, x := range n.exchanges {
		x.StopAccepting()
	}
	n.rt.Kernel().Drain()
	moved := 0
	for _, x := range n.exchanges {
		if x.Listening() {
			moved += x.MoveClients()
		}
	}
	busy := n.rt.Kernel().WaitIdle(ctx)
	clients := 0
	if moved > 0 {
		clients = n.waitClientsGone(ctx)
		clients += n.waitMovedReachable(ctx)
	}
	if busy > 0 || clients > 0 {
		n.log.Warn("drain timed out", "services_busy", busy, "clients_linked", clients, "after", time.Since(begun).Round(time.Millisecond))
		return
	}
	n.log.Info("drained", "clients_moved", moved, "took", time.Since(begun).Round(time.Millisecond))
}

// waitMovedReachable waits until every client that moved away can be
// reached through another server, or ctx ends, and returns how many
// cannot: saying bye earlier could make peers that learn the new path
// from the same announcement withdraw the client for a moment.
func (n *Node) waitMovedReachable(ctx context.Context) int {
	var moved []registry.ProcessID
	for _, x := range n.exchanges {
		moved = append(moved, x.MovedClients()...)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		k := 0
		for _, p := range moved {
			if n.rt.Kernel().RouteTo(p) == nil {
				k++
			}
		}
		if k == 0 {
			return 0
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return k
		}
	}
}

// waitClientsGone waits until no client is linked to this node, or ctx
// ends, and returns how many still are.
func (n *Node) waitClientsGone(ctx context.Context) int {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		k := 0
		for _, l := range n.Links() {
			if l.Role == registry.RoleClient.String() {
				k++
			}
		}
		if k == 0 {
			return 0
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return k
		}
	}
}
