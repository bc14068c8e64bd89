package node

// Health: alive and ready, as methods and as the console's probes.

import (
	"errors"
	"fmt"
	"time"
)

// Healthy reports whether the node is alive: nil until it has stopped.
// /healthz answers 200 when it is nil, 503 otherwise.
func (n *Node) Healthy() error {
	if n.rt.Kernel().Closed() {
		return errors.New("stopped")
	}
	return nil
}

// Ready reports whether the node should get traffic, as /readyz does:
// nil when it listens (a server), is not draining, and — when it has
// peers, seeds or servers to link to — is linked to at least one with
// its registry synced. A server is ready without links once
// Config.ReadyGrace has passed since start, so the first of several
// servers starting together is not kept waiting for the others; a
// client process is not.
func (n *Node) Ready() error {
	switch {
	case n.rt.Kernel().Closed():
		return errors.New("stopped")
	case n.draining.Load():
		return errors.New("draining")
	}
	wantsLinks := n.cfg.Gossip != nil && len(n.cfg.Gossip.Join) > 0
	client := false
	for _, x := range n.exchanges {
		wantsLinks = wantsLinks || x.Dials()
		client = client || !x.Listening()
	}
	if !wantsLinks {
		return nil
	}
	for _, l := range n.Links() {
		if l.Synced {
			return nil
		}
	}
	if !client {
		if wait := n.cfg.ReadyGrace - time.Since(n.started); wait <= 0 {
			return nil
		}
	}
	return fmt.Errorf("not linked to a peer yet")
}
