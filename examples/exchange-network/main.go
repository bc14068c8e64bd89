// Command exchange-network runs one exchange server of a distributed
// exchange (OSE's "exchange-network" demo): several servers of one
// exchange group, fully meshed (one link per pair), each serving its own
// clients. A service attached to any server is visible to the clients of
// every server.
//
// Servers find each other in two ways, which can be mixed:
//
//   - static peers, as in OSE: --connect HOST:PORT,... dials those servers
//     and keeps them linked, redialling every --retry. Each pair needs a
//     link in one direction only, so three servers can form a ring of
//     --connect (1→2, 2→3, 3→1);
//   - gossip discovery: --gossip HOST:PORT is this server's memberlist
//     address, --join HOST:PORT,... the seeds to join (any member will
//     do). Every server of the same --group that gossip reports is linked
//     to automatically. --gossip off turns it off.
//
// Three servers in a static ring (one terminal each):
//
//	go run ./examples/exchange-network --listen 127.0.0.1:11111 --connect 127.0.0.1:11112 --gossip off
//	go run ./examples/exchange-network --listen 127.0.0.1:11112 --connect 127.0.0.1:11113 --gossip off
//	go run ./examples/exchange-network --listen 127.0.0.1:11113 --connect 127.0.0.1:11111 --gossip off
//
// Three servers finding each other by gossip, all joining the first:
//
//	go run ./examples/exchange-network --listen 127.0.0.1:11111 --gossip 127.0.0.1:7946
//	go run ./examples/exchange-network --listen 127.0.0.1:11112 --gossip 127.0.0.1:7947 --join 127.0.0.1:7946
//	go run ./examples/exchange-network --listen 127.0.0.1:11113 --gossip 127.0.0.1:7948 --join 127.0.0.1:7946
//
// Then, either way, a service on one server and its caller on another:
//
//	go run ./examples/math-server --server 127.0.0.1:11112
//	go run ./examples/math-client --server 127.0.0.1:11113
//
// Kill a server and the others log its link going down (and, with
// gossip, the member leaving); restart it and the mesh forms again.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/cluster"
)

// listFlag is a flag taking HOST:PORT,... (and repeatable).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "exchange-network:", err)
		os.Exit(1)
	}
}

func run() error {
	var connect, join listFlag
	name := flag.String("name", "", "the node's `NAME` (default: exchange@LISTEN, or exchange-PID with port 0)")
	listen := flag.String("listen", "127.0.0.1:11111", "accept clients and peer servers on `HOST:PORT` (port 0 picks a free one)")
	group := flag.String("group", "", "the exchange `GROUP` (only servers of the same group link)")
	flag.Var(&connect, "connect", "static peer servers `HOST:PORT,...` to link to")
	retry := flag.Duration("retry", exchange.DefaultRetry, "delay between attempts to reach a peer")
	gossip := flag.String("gossip", cluster.DefaultBindAddr, "gossip address `HOST:PORT` for discovery (port 0 picks a free one), or off")
	flag.Var(&join, "join", "gossip seeds `HOST:PORT,...` to join")
	presetName := flag.String("preset", "local", "gossip timings `PRESET`: local, lan, or fast (loopback only: a member silent for ~1 s is dead)")
	flag.Parse()
	if *name == "" {
		*name = "exchange@" + *listen
		if strings.HasSuffix(*listen, ":0") {
			*name = fmt.Sprintf("exchange-%d", os.Getpid())
		}
	}
	preset, err := parsePreset(*presetName)
	if err != nil {
		return err
	}
	if *gossip == "off" && len(join) > 0 {
		return fmt.Errorf("--join needs gossip, but --gossip is off")
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	libLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// A server: it listens, and dials its static peers.
	cfg := node.Config{Name: *name, Listen: *listen, Group: *group, Peers: connect, Retry: *retry, Logger: libLog}
	if *gossip != "off" {
		// Gossip discovery. The node gossips this server's exchange
		// address and group, and dials each server of the same group it
		// hears of (of each pair, the one with the smaller process id
		// dials). MemberEvents is told of members of every group.
		cfg.Gossip = &cluster.Config{BindAddr: *gossip, Join: join, Preset: preset}
		cfg.MemberEvents = cluster.EventFuncs{
			Up: func(m cluster.Member) {
				log.Info("cluster member up", "member", m.Meta.Node, "exchange", m.Meta.Exchange, "group", m.Meta.Group)
			},
			Down: func(m cluster.Member, reason string) {
				log.Info("cluster member down", "member", m.Meta.Node, "reason", reason)
			},
		}
	}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		return err
	}
	// Links that came up before the watch are told first: none is missed.
	n.Exchange(*group).WatchLinks(func(ev exchange.LinkEvent) {
		switch {
		case ev.Synced:
		case ev.Active:
			log.Info("link up", "peer", ev.Link.PeerNode, "role", ev.Link.PeerRole.String(), "remote", ev.Link.PeerAddress)
		default:
			log.Info("link down", "peer", ev.Link.PeerNode, "role", ev.Link.PeerRole.String(), "reason", ev.Reason)
		}
	})
	log.Info("exchange server listening", "node", *name, "listen", n.Addr(), "group", *group, "connect", connect.String())
	if m := n.Mesh(); m != nil {
		log.Info("gossip started", "gossip", m.Cluster().LocalAddr(), "join", join.String(), "preset", preset.String())
	}
	// Until Ctrl-C or SIGTERM; stopping leaves the cluster, so the others
	// drop this member at once.
	return n.Run(context.Background())
}

func parsePreset(s string) (cluster.Preset, error) {
	for _, p := range []cluster.Preset{cluster.Local, cluster.LAN, cluster.Fast} {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("--preset %q: want local, lan or fast", s)
}
