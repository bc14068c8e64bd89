package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/netsvc-go/netsvc/actors/console"
	"github.com/netsvc-go/netsvc/actors/node"
)

// startConsole starts the node's console when cfg.console is set (it is
// "" for --console off) and prints its URL on stderr. members, which may
// be nil, lists the cluster members. stop stops it; c is nil when off.
func startConsole(n *node.Node, cfg nodeFlags, members func() any, stderr io.Writer) (stop func(), c *console.Console, err error) {
	if cfg.console == "" {
		return func() {}, nil, nil
	}
	gossip := cfg.gossip
	if gossip == "" {
		gossip = "off"
	}
	c, err = console.Start(console.Config{
		Addr:    cfg.console,
		Token:   cfg.consoleToken.get(),
		Node:    n,
		Members: members,
		NodeInfo: func() map[string]any {
			return map[string]any{
				"version": buildVersion(),
				"gossip":  gossip,
				"join":    append([]string{}, cfg.join...),
				"connect": append([]string{}, cfg.connect...),
				"demo":    cfg.demo,
			}
		},
		Logger:             n.Runtime().Logger(),
		GatewayMaxBody:     cfg.limits.console.GatewayMaxBody,
		GatewayMaxInFlight: cfg.limits.console.GatewayMaxInFlight,
	})
	if err != nil {
		return nil, nil, err
	}
	note := ""
	if cfg.consoleToken.isSet() {
		note = " (add ?token=TOKEN, the console token " + cfg.consoleToken.from() + ")"
	}
	fmt.Fprintf(stderr, "console on %s%s\n", c.URL(), note)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Stop(ctx)
	}, c, nil
}
