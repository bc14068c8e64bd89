package node

// A node's configuration, its presets and the checks Start makes.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/console"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/cluster"
	"github.com/netsvc-go/netsvc/service"
)

// Defaults of a Config.
const (
	// DefaultListen is where LANConfig's server listens (every
	// interface); LocalConfig listens on loopback at the same port.
	DefaultListen = ":11111"
	// DefaultDrainTimeout bounds a drain: clients moving and requests
	// running get this long before the node closes anyway. It stays
	// well inside Kubernetes' default terminationGracePeriodSeconds (30).
	DefaultDrainTimeout = 15 * time.Second
	// DefaultReadyGrace is how long after start a server with peers or
	// seeds configured reports ready without being linked to any: the
	// first of several servers starting together is not kept waiting
	// for peers that start after it.
	DefaultReadyGrace = 10 * time.Second
)

// Config configures a node. The zero value (with a Name) is a process
// that runs services in-process only; set Listen for a server, Servers
// for a client, Gossip for discovery, Console for the debug console.
// LANConfig, LocalConfig and TestConfig return the usual ones.
type Config struct {
	// Name is the node's name in bindings, links and the console.
	Name string

	// Listen makes the node an exchange server of Group: it accepts
	// peers and clients on HOST:PORT (port 0 picks a free port; see
	// Node.Addr).
	Listen string
	// Advertise is the exchange address told to peers (gossip, the move
	// frame) when Listen binds every interface or sits behind NAT.
	// Empty: Listen's, with an unspecified host replaced by the gossip
	// advertise host or the host's private address.
	Advertise string
	// Peers are static servers of Group this server links to and keeps
	// linked (rule 11). With Gossip, usually none.
	Peers []string
	// Servers makes the node a client process of Group: it links to the
	// first of them that accepts it, the others being fallbacks. A
	// client does not listen: Servers and Listen exclude each other.
	Servers []string
	// Group is the exchange group of that endpoint ("" is the default).
	Group string
	// Retry is the delay between attempts to reach a peer or server;
	// exchange.DefaultRetry when zero.
	Retry time.Duration
	// Tokens are the group's shared secrets: a peer must prove it knows
	// one, and this node proves it knows the first (two rotate a token).
	// No token crosses the wire.
	Tokens []string
	// ServerTLS and ClientTLS turn on TLS for accepted and dialled links
	// (exchange.TLSFiles builds both).
	ServerTLS, ClientTLS *tls.Config
	// Link bounds each link of that endpoint (frame size, queues,
	// timeouts, what a client may announce).
	Link connection.Config

	// Gossip, when set, joins the node to a gossip cluster (package
	// cluster) and keeps its server endpoint linked to every other
	// server of its group: a full mesh without peer lists. The node
	// fills in Meta's process, node, exchange, group, role and console.
	// Needs Listen.
	Gossip *cluster.Config
	// MemberEvents, when set, is told of cluster members coming and
	// going, after the node acted on them.
	MemberEvents cluster.Events
	// Console, when set, serves the debug console (web page, JSON API,
	// gateway, metrics) and the health probes /healthz and /readyz. The
	// node fills in Node, Members, Alive and Ready.
	Console *console.Config

	// DrainTimeout bounds Stop's drain; DefaultDrainTimeout when zero.
	DrainTimeout time.Duration
	// ReadyGrace: see DefaultReadyGrace, the default when zero.
	ReadyGrace time.Duration

	// Exchanges are more exchange endpoints, one per exchange group,
	// beside the one Listen or Servers describe (or instead of it): a
	// process with endpoints in two groups is a bridge (rule 5).
	Exchanges []exchange.Config
	// Runtime tunes the service runtime (call timeout, payload limit).
	// Its Node and Logger fields are taken from Name and Logger.
	Runtime service.Config
	// Limits bound what peers can make the node hold across all its
	// links and exchanges (rule 36); zero fields take the defaults.
	Limits connection.Limits
	// Logger receives the node's logs; nil is quiet.
	Logger *slog.Logger
}

// LANConfig is a server for a cluster on a local network, in
// memberlist's style: the exchange on every interface at port 11111,
// gossip on every interface at port 7946 with the LAN preset, the
// console on loopback at port 8080. Add seeds to Gossip.Join, a token
// and a gossip key: every interface means every host that can reach it.
func LANConfig(name string) Config {
	return Config{
		Name:    name,
		Listen:  DefaultListen,
		Gossip:  &cluster.Config{BindAddr: ":7946", Preset: cluster.LAN},
		Console: &console.Config{Addr: console.DefaultAddr},
	}
}

// LocalConfig is a server on one machine: everything on loopback, the
// exchange at port 11111, gossip at 7946 with the Local preset, the
// console at 8080.
func LocalConfig(name string) Config {
	return Config{
		Name:    name,
		Listen:  "127.0.0.1:11111",
		Gossip:  &cluster.Config{BindAddr: cluster.DefaultBindAddr, Preset: cluster.Local},
		Console: &console.Config{Addr: console.DefaultAddr},
	}
}

// TestConfig is a server for tests and examples: loopback, free ports
// everywhere (read them back with Node.Addr, Mesh and Console), gossip
// with the Fast preset (a member silent for about a second is dead),
// short retry, drain and ready delays.
func TestConfig(name string) Config {
	return Config{
		Name:         name,
		Listen:       "127.0.0.1:0",
		Retry:        200 * time.Millisecond,
		Gossip:       &cluster.Config{BindAddr: "127.0.0.1:0", Preset: cluster.Fast},
		Console:      &console.Config{Addr: "127.0.0.1:0"},
		DrainTimeout: 5 * time.Second,
		ReadyGrace:   time.Second,
	}
}

func (cfg Config) withDefaults() Config {
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.ReadyGrace <= 0 {
		cfg.ReadyGrace = DefaultReadyGrace
	}
	if cfg.Retry <= 0 {
		cfg.Retry = exchange.DefaultRetry
	}
	return cfg
}

// check reports a configuration Start cannot run.
func (cfg Config) check() error {
	switch {
	case cfg.Name == "":
		return errors.New("node: no Name")
	case cfg.Listen != "" && len(cfg.Servers) > 0:
		return fmt.Errorf("node %s: Listen and Servers both set: a client endpoint does not listen (it links to a server); make it a server (Listen, Peers) or a client (Servers)", cfg.Name)
	case len(cfg.Peers) > 0 && cfg.Listen == "":
		return fmt.Errorf("node %s: Peers are a server's: set Listen too (a client names its Servers)", cfg.Name)
	case cfg.Gossip != nil && cfg.Listen == "":
		return fmt.Errorf("node %s: gossip meshes servers: set Listen", cfg.Name)
	}
	return nil
}

// mainEndpoint returns the exchange config that Listen or Servers
// describe; ok is false when neither is set. A server's listener is
// opened here, so its advertised address is known.
func (cfg Config) mainEndpoint() (xc exchange.Config, ok bool, err error) {
	xc = exchange.Config{Group: cfg.Group, Retry: cfg.Retry, Tokens: cfg.Tokens,
		ServerTLS: cfg.ServerTLS, ClientTLS: cfg.ClientTLS, Link: cfg.Link}
	switch {
	case len(cfg.Servers) > 0:
		xc.Role, xc.Connect = registry.RoleClient, cfg.Servers
		return xc, true, nil
	case cfg.Listen == "":
		return xc, false, nil
	}
	ln, err := listenFor(cfg.Listen)
	if err != nil {
		return xc, false, fmt.Errorf("node %s: %w", cfg.Name, err)
	}
	xc.Role, xc.Listener, xc.Connect = registry.RoleServer, ln, cfg.Peers
	xc.Advertise = cfg.Advertise
	if xc.Advertise == "" {
		xc.Advertise = cfg.advertise(ln.Addr().String())
	}
	return xc, true, nil
}

// advertise is the exchange address to tell peers for a listener bound
// to bound: an unspecified host (0.0.0.0, ::) is replaced by the gossip
// advertise or bind host when that names one, else by the host's
// private address, as memberlist picks it.
func (cfg Config) advertise(bound string) string {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return bound
	}
	if g := cfg.Gossip; g != nil {
		for _, a := range []string{g.Advertise, g.BindAddr} {
			if h, _, err := net.SplitHostPort(a); err == nil {
				if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
					return net.JoinHostPort(h, port)
				}
			}
		}
	}
	if ip, err := sockaddr.GetPrivateIP(); err == nil && ip != "" {
		return net.JoinHostPort(ip, port)
	}
	return bound
}
