package main

import (
	"context"
	"io"

	"github.com/netsvc-go/netsvc/actors/node"
)

// startExtras starts what a server node runs beside its exchange: cluster
// discovery (--gossip, --join, --gossip-key) and the console (--console,
// --console-token). cfg has been validated: cfg.gossip and cfg.console
// are "" when turned off, cfg.secretKey holds the decoded gossip key.
// Lines for the person running the node (the console's URL) go to
// stderr. stop is called once, before the node stops; it must not be nil
// when err is nil.
//
// Cluster discovery is not wired in yet: the node runs with its static
// --connect peers only.
func startExtras(ctx context.Context, n *node.Node, cfg nodeFlags, stderr io.Writer) (stop func(), err error) {
	_ = ctx

	// CLUSTER: start the cluster here when cfg.gossip != "", and give the
	// console its members: set members to a func returning them (any
	// JSON-marshalable slice; the console shows and counts it). To show
	// membership changes live, call the console's Publish("member", data).
	var members func() any

	stopConsole, _, err := startConsole(n, cfg, members, stderr)
	if err != nil {
		return nil, err
	}
	return func() {
		stopConsole()
	}, nil
}
