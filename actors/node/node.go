// Package node is what a program embeds to be a netsvc process: the
// service runtime, its exchange endpoints, gossip discovery with the full
// mesh it drives, the console with its health probes, and an ordered
// drain on Stop, started from one Config.
//
// A server that joins a cluster:
//
//	cfg := node.LANConfig("orders-1")
//	cfg.Gossip.Join = []string{"10.0.0.5:7946"}
//	n, err := node.Start(ctx, cfg)
//	...
//	n.Runtime().Start(ctx, "orders", ordersService())
//	return n.Run(ctx) // until SIGINT or SIGTERM, then drain and stop
//
// A client process, linked to one of two servers once its registry is
// synced:
//
//	n, err := node.Connect(ctx, node.Config{Name: "web", Servers: []string{"10.0.0.5:11111", "10.0.0.6:11111"}})
//
// Package nodetest starts nodes in tests. Numbered rules cited in comments
// are those of package actors.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/console"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/cluster"
	"github.com/netsvc-go/netsvc/service"
)

// Server returns the exchange config of a server endpoint.
func Server(group, listen string, connect ...string) exchange.Config {
	return exchange.Config{Group: group, Role: registry.RoleServer, Listen: listen, Connect: connect}
}

// Client returns the exchange config of a client endpoint linked to one
// of servers: the first it can reach and that accepts it, trying the
// others in turn when that one goes or refuses (a client is never
// linked to two servers at once, but while it moves off a draining one).
func Client(group string, servers ...string) exchange.Config {
	return exchange.Config{Group: group, Role: registry.RoleClient, Connect: servers}
}

// Node is a running process: runtime, exchanges, and when configured the
// gossip mesh and the console.
type Node struct {
	cfg       Config
	rt        *service.Runtime
	budget    *connection.Budget
	exchanges []*exchange.Exchange
	main      *exchange.Exchange // the endpoint of Listen or Servers, if any
	mesh      *Mesh
	console   *console.Console
	log       *slog.Logger
	started   time.Time
	draining  atomic.Bool
	stopOnce  sync.Once
	stopErr   error
	stopped   chan struct{}
}

// Start starts the node: the runtime, the exchange endpoints, then
// gossip and the console when configured. On error, what started is
// stopped again.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	rc := cfg.Runtime
	rc.Node = cfg.Name
	rc.Logger = cfg.Logger
	rt, err := service.NewRuntime(rc)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, rt: rt, log: rt.Logger(), budget: connection.NewBudget(cfg.Limits), started: time.Now(),
		stopped: make(chan struct{})}
	fail := func(err error) (*Node, error) {
		n.shutdown(context.Background())
		return nil, err
	}
	endpoints := cfg.Exchanges
	if xc, ok, err := cfg.mainEndpoint(); err != nil {
		return fail(err)
	} else if ok {
		endpoints = append([]exchange.Config{xc}, endpoints...)
	}
	seen := map[string]bool{}
	for i, xc := range endpoints {
		if seen[xc.Group] {
			return fail(fmt.Errorf("node %s: two exchanges for group %q: one per group", cfg.Name, xc.Group))
		}
		seen[xc.Group] = true
		if xc.Logger == nil {
			xc.Logger = cfg.Logger
		}
		if xc.Budget == nil {
			xc.Budget = n.budget
		}
		x, err := exchange.Start(rt.Kernel(), xc)
		if err != nil {
			if xc.Listener != nil {
				xc.Listener.Close()
			}
			return fail(err)
		}
		n.exchanges = append(n.exchanges, x)
		if i == 0 && (cfg.Listen != "" || len(cfg.Servers) > 0) {
			n.main = x
		}
	}
	var con *console.Console
	if cfg.Console != nil {
		if con, err = n.startConsole(*cfg.Console); err != nil {
			return fail(err)
		}
		n.console = con
	}
	if cfg.Gossip != nil {
		if err := n.startGossip(*cfg.Gossip); err != nil {
			return fail(err)
		}
	}
	return n, nil
}

// startGossip joins the gossip cluster and meshes the main server
// endpoint with every server of its group that gossip reports.
func (n *Node) startGossip(gc cluster.Config) error {
	if n.main == nil || n.cfg.Listen == "" {
		return fmt.Errorf("node %s: gossip needs a server endpoint: set Listen", n.cfg.Name)
	}
	if gc.Logger == nil {
		gc.Logger = n.cfg.Logger
	}
	if gc.Meta.Exchange == "" {
		gc.Meta.Exchange = n.main.Advertised()
	}
	if n.console != nil && gc.Meta.Console == "" {
		gc.Meta.Console = n.console.Addr()
	}
	ev := n.cfg.MemberEvents
	if con := n.console; con != nil {
		// The console's page shows members live.
		user := ev
		ev = cluster.EventFuncs{
			Up: func(mb cluster.Member) {
				con.Publish("member", map[string]any{"state": "up", "member": mb})
				if user != nil {
					user.MemberUp(mb)
				}
			},
			Down: func(mb cluster.Member, reason string) {
				con.Publish("member", map[string]any{"state": "down", "reason": reason, "member": mb})
				if user != nil {
					user.MemberDown(mb, reason)
				}
			},
		}
	}
	m, err := StartMesh(n.rt, n.main, gc, ev)
	if err != nil {
		return fmt.Errorf("node %s: gossip: %w", n.cfg.Name, err)
	}
	n.mesh = m
	// Its clients ask for the members over their link (netsvc members).
	n.rt.Kernel().HandleProcess(registry.MethodMembers, func() (any, error) { return m.Cluster().Members(), nil })
	return nil
}

// startConsole serves the node's console, with the health probes and
// the cluster's members.
func (n *Node) startConsole(cc console.Config) (*console.Console, error) {
	cc.Node = n
	if cc.Logger == nil {
		cc.Logger = n.cfg.Logger
	}
	if cc.Members == nil && n.cfg.Gossip != nil {
		cc.Members = func() any {
			if n.mesh == nil {
				return []cluster.Member{}
			}
			return n.mesh.Members()
		}
	}
	if cc.Alive == nil {
		cc.Alive = n.Healthy
	}
	if cc.Ready == nil {
		cc.Ready = n.Ready
	}
	info := cc.NodeInfo
	cc.NodeInfo = func() map[string]any {
		m := map[string]any{"draining": n.draining.Load()}
		if n.mesh != nil {
			m["gossip"] = n.mesh.Cluster().LocalAddr()
		}
		if info != nil {
			for k, v := range info() {
				m[k] = v
			}
		}
		return m
	}
	return console.Start(cc)
}

// Runtime returns the node's service runtime.
func (n *Node) Runtime() *service.Runtime { return n.rt }

// Budget returns the accounting of the node's Limits.
func (n *Node) Budget() *connection.Budget { return n.budget }

// Kernel returns the kernel under the node's runtime: its registry,
// routing and introspection, for the console and tools.
func (n *Node) Kernel() *registry.Kernel { return n.rt.Kernel() }

// Exchanges returns the node's exchanges.
func (n *Node) Exchanges() []*exchange.Exchange { return n.exchanges }

// Exchange returns the exchange of a group, or nil.
func (n *Node) Exchange(group string) *exchange.Exchange {
	for _, x := range n.exchanges {
		if x.Group() == group {
			return x
		}
	}
	return nil
}

// Mesh returns the gossip mesh, nil without Config.Gossip.
func (n *Node) Mesh() *Mesh { return n.mesh }

// Console returns the console, nil without Config.Console.
func (n *Node) Console() *console.Console { return n.console }

// Addr returns the listen address of the first listening exchange.
func (n *Node) Addr() string {
	for _, x := range n.exchanges {
		if a := x.Addr(); a != "" {
			return a
		}
	}
	return ""
}

// Links returns the links of every exchange.
func (n *Node) Links() []exchange.LinkStatus {
	var out []exchange.LinkStatus
	for _, x := range n.exchanges {
		out = append(out, x.Links()...)
	}
	return out
}

// WaitSynced waits until every endpoint that dials (a client's, a static
// peer's) has a link up with everything its peer announced at link-up in
// this node's registry — for a bridge, both sides — so a client process
// can look services up and trust the answer. A node whose endpoints
// only listen waits for one synced link.
func (n *Node) WaitSynced(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	for _, x := range n.exchanges {
		cancel := x.WatchLinks(func(ev exchange.LinkEvent) {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		defer cancel()
	}
	for {
		missing := n.unsynced()
		if missing == "" {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", missing, ctx.Err())
		}
	}
}

// unsynced names what WaitSynced still waits for, "" for nothing.
func (n *Node) unsynced() string {
	anyDials, anySynced := false, false
	for _, x := range n.exchanges {
		synced := false
		for _, l := range x.Links() {
			synced = synced || l.Synced
		}
		anySynced = anySynced || synced
		if x.Dials() {
			anyDials = true
			if !synced {
				return fmt.Sprintf("no link of exchange group %q came up", x.Group())
			}
		}
	}
	if !anyDials && !anySynced {
		return "no link came up"
	}
	return ""
}

// Run blocks until ctx ends or the process receives SIGINT or SIGTERM,
// then stops the node with its drain (Stop), within the drain timeout
// and a few seconds more. It returns Stop's error.
func (n *Node) Run(ctx context.Context) error {
	sig, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig.Done():
	case <-n.stopped:
	}
	stop()
	n.log.Info("stopping", "node", n.cfg.Name, "drain_timeout", n.cfg.DrainTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), n.cfg.DrainTimeout+closeGrace)
	defer cancel()
	return n.Stop(sctx)
}

// closeGrace is what Stop allows, past the drain, to leave the cluster,
// say bye and close when its context has no deadline.
const closeGrace = 10 * time.Second

// Stop drains the node, then stops it (DESIGN: ordered drain):
//
//  1. it takes no new links, and withdraws its services everywhere while
//     its links stay up, so new calls go to other instances;
//  2. it tells its clients to move to other servers (each links to one
//     before letting this one go);
//  3. it lets requests already running finish, and clients move, up to
//     Config.DrainTimeout (or ctx's end); requests that still arrive are
//     answered "withdrawn, not run", so their callers may go elsewhere;
//  4. it leaves the gossip cluster, says bye on every link, stops the
//     console and the runtime.
//
// Stop and Close are safe to call more than once, and together; later
// calls return the first's error.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() {
		defer close(n.stopped)
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, n.cfg.DrainTimeout+closeGrace)
			defer cancel()
		}
		drainFor := n.cfg.DrainTimeout
		if d, ok := ctx.Deadline(); ok {
			// Keep a quarter of what ctx allows (up to closeGrace) to
			// leave, say bye and close.
			left := time.Until(d)
			drainFor = min(drainFor, left-min(left/4, closeGrace))
		}
		n.drain(ctx, drainFor)
		n.stopErr = n.shutdown(ctx)
	})
	return n.stopErr
}

// Close stops the node at once, without the drain: it leaves the
// cluster and says bye on its links (peers withdraw its services at
// once), and requests still running or waiting fail. Stop is the
// graceful way; Close is for tests, and for a second signal.
func (n *Node) Close() error {
	n.stopOnce.Do(func() {
		defer close(n.stopped)
		n.draining.Store(true)
		n.stopErr = n.shutdown(context.Background())
	})
	return n.stopErr
}

// shutdown leaves the cluster, closes the links, the console and the
// runtime: the last step of Stop, and what a failed Start undoes.
func (n *Node) shutdown(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, closeGrace)
		defer cancel()
	}
	var errs []error
	if n.mesh != nil {
		// Peers see "left" at once and keep the link until its bye.
		if err := n.mesh.Leave(2 * time.Second); err != nil {
			n.log.Warn("leaving the cluster", "error", err)
		}
	}
	for _, x := range n.exchanges {
		if err := x.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop exchange %s: %w", x.Group(), err))
		}
	}
	if n.console != nil {
		if err := n.console.Stop(ctx); err != nil {
			n.log.Warn("stopping the console", "error", err)
		}
	}
	if err := n.rt.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// listenFor opens the main endpoint's listener, so that the address it
// advertises is known before it starts.
func listenFor(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}
