package main

import (
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/cluster"
)

// startExtras starts what a server node runs beside its exchange: the
// console (--console, --console-token) and cluster discovery (--gossip,
// --join, --gossip-key, --gossip-preset). cfg has been validated:
// cfg.gossip and cfg.console are "" when turned off, cfg.secretKey holds
// the decoded gossip key. Lines for the person running the node go to
// stderr. stop is called once, before the node stops: it leaves the
// cluster first, so peers drop this node at once.
func startExtras(n *node.Node, cfg nodeFlags, stderr io.Writer) (stop func(), err error) {
	var mesh atomic.Pointer[node.Mesh]
	var members func() any
	if cfg.gossip != "" {
		members = func() any {
			if m := mesh.Load(); m != nil {
				return m.Members()
			}
			return []cluster.Member{}
		}
	}
	stopConsole, con, err := startConsole(n, cfg, members, stderr)
	if err != nil {
		return nil, err
	}
	if cfg.gossip == "" {
		return stopConsole, nil
	}
	meta := cluster.Meta{Version: buildVersion(), Exchange: exchangeAdvertise(n.Addr(), cfg)}
	if con != nil {
		meta.Console = con.Addr()
	}
	m, err := node.StartMesh(n.Runtime(), n.Exchange(cfg.group), cluster.Config{
		BindAddr:  cfg.gossip,
		Advertise: cfg.gossipAdvertise,
		Join:      cfg.join,
		SecretKey: cfg.secretKey,
		Preset:    cfg.preset,
		Meta:      meta,
		Logger:    n.Runtime().Logger(),
	}, cluster.EventFuncs{
		// The console's page shows members live.
		Up: func(mb cluster.Member) {
			if con != nil {
				con.Publish("member", map[string]any{"state": "up", "member": mb})
			}
		},
		Down: func(mb cluster.Member, reason string) {
			if con != nil {
				con.Publish("member", map[string]any{"state": "down", "reason": reason, "member": mb})
			}
		},
	})
	if err != nil {
		stopConsole()
		return nil, fmt.Errorf("gossip: %w", err)
	}
	mesh.Store(m)
	fmt.Fprintf(stderr, "gossip on %s (preset %s)", m.Cluster().LocalAddr(), cfg.preset)
	if len(cfg.join) > 0 {
		fmt.Fprintf(stderr, ", joining %s", cfg.join.String())
	}
	fmt.Fprintln(stderr)
	return func() {
		if err := m.Leave(2 * time.Second); err != nil {
			n.Runtime().Logger().Warn("leaving the cluster", "error", err)
		}
		stopConsole()
	}, nil
}

// exchangeAdvertise is the exchange address gossiped to peers: --advertise
// when given; otherwise the listen address, with an unspecified host
// (0.0.0.0) replaced by the gossip host, which peers can reach.
func exchangeAdvertise(listen string, cfg nodeFlags) string {
	if cfg.advertise != "" {
		return cfg.advertise
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		g := cfg.gossipAdvertise
		if g == "" {
			g = cfg.gossip
		}
		if gh, _, err := net.SplitHostPort(g); err == nil {
			if gip := net.ParseIP(gh); gip == nil || !gip.IsUnspecified() {
				return net.JoinHostPort(gh, port)
			}
		}
	}
	return listen
}
