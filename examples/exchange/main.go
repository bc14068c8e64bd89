// Command exchange runs an exchange server: a node with one server
// exchange endpoint and no services of its own (OSE's "exchange" demo).
// Client processes (math-server, math-client, publisher, subscriber,
// bridge...) link to it, and it passes on what each announces: services,
// service groups, then requests, replies and reports between them.
//
// Run the default group's server, the one the other examples dial:
//
//	go run ./examples/exchange --listen 127.0.0.1:11111
//
// Run a server of another exchange group (for examples/bridge): clients of
// group "backend" link to it, clients of other groups are refused.
//
//	go run ./examples/exchange --listen 127.0.0.1:11112 --group backend
//
// Stop it with Ctrl-C: it drains (clients that have another server move
// to it), then says goodbye on every link, so the clients withdraw what
// they learned through it at once.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "exchange:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:11111", "accept clients on `HOST:PORT` (port 0 picks a free one)")
	group := flag.String("group", "", "the exchange `GROUP` served (\"\" is the default group)")
	name := flag.String("name", "exchange", "the node's `NAME` in bindings and logs")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	// The library logs through its own logger; warnings are enough here.
	libLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// A server of the group, listening; no static peers.
	n, err := node.Start(context.Background(), node.Config{Name: *name, Listen: *listen, Group: *group, Logger: libLog})
	if err != nil {
		return err
	}
	// Log each client (or peer server) linking and unlinking.
	n.Exchange(*group).WatchLinks(func(ev exchange.LinkEvent) {
		switch {
		case ev.Synced: // the peer's services are all in our registry: nothing to say
		case ev.Active:
			log.Info("link up", "peer", ev.Link.PeerNode, "role", ev.Link.PeerRole.String(), "remote", ev.Link.PeerAddress)
		default:
			log.Info("link down", "peer", ev.Link.PeerNode, "reason", ev.Reason)
		}
	})
	log.Info("exchange server listening", "listen", n.Addr(), "group", *group)
	return n.Run(context.Background()) // until Ctrl-C or SIGTERM, then drain and stop
}
