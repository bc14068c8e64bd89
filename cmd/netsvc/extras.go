package main

import (
	"context"

	"github.com/netsvc-go/netsvc/actors/node"
)

// startExtras starts what a server node runs beside its exchange: cluster
// discovery (--gossip, --join, --gossip-key) and the console (--console,
// --console-token). cfg has been validated: cfg.gossip and cfg.console
// are "" when turned off, cfg.secretKey holds the decoded gossip key.
//
// Neither is wired in yet, so it starts nothing and says nothing: the
// node runs with its static --connect peers only. stop is called once,
// before the node stops; it must not be nil when err is nil.
func startExtras(ctx context.Context, n *node.Node, cfg nodeFlags) (stop func(), err error) {
	_, _, _ = ctx, n, cfg
	return func() {}, nil
}
