// Package exchange is the exchange actor of one exchange group: it owns
// the group's links (listening for peers, dialling and redialling them),
// decides which link survives when two processes link twice, and applies
// the audience, group and split-horizon filters to every registry change
// it announces (rules 1–10 of package actors).
package exchange

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/registry"
)

// DefaultRetry is the delay between attempts to reach a peer (OSE's 5 s).
const DefaultRetry = 5 * time.Second

// Config configures the exchange of one group.
type Config struct {
	Group string        // exchange group ("" is the default group)
	Role  registry.Role // RoleServer: a node; RoleClient: a client process
	// Listen is the address to accept peers on ("" for none). Listener,
	// when set, is used instead.
	Listen   string
	Listener net.Listener
	// Advertise is the listen address told to peers (default: the bound one).
	Advertise string
	// Connect lists peers to dial and keep linked, retrying every Retry
	// forever (rule 11).
	Connect []string
	Retry   time.Duration
	// Tokens, when set, are the shared secrets of the exchange group: a
	// peer must prove it knows one, and this endpoint proves it knows
	// the first (rule 35). No token crosses the wire. Two at once
	// rotate a token without an outage: give every node both (the old
	// first), then the new one first, then drop the old.
	Tokens []string
	// Admit, when set, decides per remote address whether to accept a
	// connection (rule 33); an error refuses it with that reason.
	Admit func(remote net.Addr) error
	// ServerTLS and ClientTLS turn on TLS for accepted and dialled links
	// (TLSFiles.Load builds both from PEM files). A dialled link checks
	// the peer's certificate names the host dialled, unless
	// ClientTLS.ServerName is set. A handshake that fails on a
	// certificate, or with a peer that does not speak TLS, is not retried.
	ServerTLS, ClientTLS *tls.Config
	// Link bounds each link (frame size, queues, timeouts, what a client
	// may announce); Budget bounds them all together, across the node's
	// exchanges (rule 36). A nil Budget is one of the exchange's own
	// with the default limits.
	Link   connection.Config
	Budget *connection.Budget
	Logger *slog.Logger
}

// Exchange is the handle of a running exchange actor.
type Exchange struct {
	stopped  atomic.Bool
	lnOnce   sync.Once
	rt       *registry.Kernel
	cfg      Config
	pid      *actor.PID
	addr     string
	ln       net.Listener
	log      *slog.Logger
	refusals refusalCounts
	dead     deadSet // processes the cluster declared dead (Forget)
}

var linkSeq atomic.Uint64

// Start opens the listener (so a taken port is reported here) and starts
// the exchange actor.
func Start(rt *registry.Kernel, cfg Config) (*Exchange, error) {
	if cfg.Role == 0 {
		cfg.Role = registry.RoleServer
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.Logger == nil {
		cfg.Logger = rt.Logger()
	}
	if cfg.Budget == nil {
		cfg.Budget = connection.NewBudget(connection.Limits{})
	}
	if cfg.Role == registry.RoleClient && (cfg.Listen != "" || cfg.Listener != nil) {
		return nil, fmt.Errorf("exchange %s: a client endpoint does not listen (it links to one server); make it a server, or drop Listen", groupName(cfg.Group))
	}
	x := &Exchange{rt: rt, cfg: cfg, log: cfg.Logger.With("exchange", cfg.Group)}
	ln := cfg.Listener
	if ln == nil && cfg.Listen != "" {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("exchange %s: listen: %w", groupName(cfg.Group), err)
		}
	}
	if ln != nil {
		if cfg.ServerTLS != nil {
			ln = tls.NewListener(ln, cfg.ServerTLS)
		}
		x.ln, x.addr = ln, ln.Addr().String()
	}
	a := &exchangeActor{x: x, conns: map[*connection.Conn]*link{}, byPeer: map[registry.ProcessID]*connection.Conn{}, targets: map[string]*target{},
		retired: map[string]*PeerStats{}, accepting: true, movedLinks: map[*connection.Conn]bool{}}
	name := "exchange"
	if cfg.Group != "" {
		name = "exchange." + cfg.Group
	}
	pid, err := rt.ActorSystem().Root.SpawnNamed(rt.Props(registry.KindExchange, groupName(cfg.Group), func() actor.Actor { return a }, a.detail), name)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, fmt.Errorf("exchange %s: %w", groupName(cfg.Group), err)
	}
	x.pid = pid
	rt.AttachExchange(pid)
	if x.ln != nil {
		go x.accept()
	}
	if cfg.Role == registry.RoleClient && len(cfg.Connect) > 0 {
		// Calls by name made before the first link is synced wait for
		// it, up to a retry delay (rule 13), rather than find nothing.
		rt.Relinking(cfg.Retry)
	}
	if cfg.Role == registry.RoleClient && len(cfg.Connect) > 1 {
		// A client links to one server, never several: two links into
		// one meshed group would hand its bindings round in a loop.
		x.send(&dialFallbacks{addrs: cfg.Connect})
		return x, nil
	}
	for _, addr := range cfg.Connect {
		x.Dial(addr)
	}
	return x, nil
}

func groupName(g string) string {
	if g == "" {
		return `""`
	}
	return g
}

// Addr returns the address the exchange listens on ("" when it does not).
func (x *Exchange) Addr() string { return x.addr }

// Group returns the exchange group.
func (x *Exchange) Group() string { return x.cfg.Group }

// PID returns the exchange actor's pid.
func (x *Exchange) PID() *actor.PID { return x.pid }

// Dial makes the exchange link to addr and keep it linked.
func (x *Exchange) Dial(addr string) { x.send(&dialTarget{addr: addr}) }

// DialOnce links to process p at addr with one attempt, unless it is
// linked already: no retries, and no redial when that link goes. A node
// that closed a link for a peer the cluster declared dead calls it when
// the peer is seen alive again, though the peer is the one to dial
// (rule 10): after a blip only this side may know the link went.
func (x *Exchange) DialOnce(p registry.ProcessID, addr string) {
	x.dead.clear(p)
	x.send(&dialOnce{process: p, addr: addr})
}

// Undial stops keeping a link to addr (an established link stays).
func (x *Exchange) Undial(addr string) { x.send(&undialTarget{addr: addr}) }

// Forget closes the link to a process at once, for a peer the cluster
// declared dead: its services are withdrawn without waiting for TCP.
// Until Alive says otherwise, the process is refused if it links again:
// a node whose gossip hangs while its links work is kept out.
func (x *Exchange) Forget(p registry.ProcessID, reason string) {
	x.dead.mark(p)
	x.send(&forgetPeer{process: p, reason: reason})
}

// Alive tells the exchange the cluster sees process p alive (again): a
// process Forget refused may link.
func (x *Exchange) Alive(p registry.ProcessID) { x.dead.clear(p) }

// Stop closes the listener, says bye on every link (after what is
// queued on it), waits for the links to close and stops the actor.
func (x *Exchange) Stop(ctx context.Context) error {
	if x.stopped.Swap(true) {
		return nil
	}
	if x.ln != nil {
		x.closeListener()
	}
	drained := make(chan struct{})
	x.send(&drain{reason: "node " + x.rt.Node() + " stopping", done: drained})
	select {
	case <-drained:
	case <-ctx.Done():
	}
	x.rt.DetachExchange(x.pid)
	f := x.rt.ActorSystem().Root.StopFuture(x.pid)
	done := make(chan error, 1)
	go func() { done <- f.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (x *Exchange) send(m any) { x.rt.ActorSystem().Root.Send(x.pid, m) }

func (x *Exchange) closeListener() { x.lnOnce.Do(func() { x.ln.Close() }) }

// --- the actor ---

type (
	accepted struct {
		nc      net.Conn
		release func()
	}
	dialTarget    struct{ addr string }
	dialFallbacks struct{ addrs []string }
	undialTarget  struct{ addr string }
	dialOnce      struct {
		process registry.ProcessID
		addr    string
	}
	dialResult struct {
		t         *target
		nc        net.Conn
		err       error
		permanent bool // retrying cannot help (TLS: a certificate does not verify)
	}
	retryTick  struct{ t *target }
	forgetPeer struct {
		process registry.ProcessID
		reason  string
	}
	watchLinks struct {
		id   uint64
		fn   func(LinkEvent)
		done chan struct{}
	}
	unwatchLinks struct{ id uint64 }
	queryLinks   struct{ reply chan []LinkStatus }
	drain        struct {
		reason string
		done   chan struct{}
	}
	queryTargets struct{ reply chan []TargetStatus }
)

type exchangeActor struct {
	x          *Exchange
	ctx        actor.Context
	conns      map[*connection.Conn]*link
	byPeer     map[registry.ProcessID]*connection.Conn
	targets    map[string]*target
	observers  map[uint64]func(LinkEvent)
	retired    map[string]*PeerStats // counters of closed links, by peer label
	stopping   bool
	accepting  bool                      // false once StopAccepting: accepted connections are closed
	movedLinks map[*connection.Conn]bool // links of clients that moved away during the drain
	drained    chan struct{}             // closed once every link is gone after a drain
	linkCount  atomic.Int64
}

func (a *exchangeActor) detail() map[string]any {
	return map[string]any{"group": a.x.cfg.Group, "role": a.x.cfg.Role.String(), "listen": a.x.addr, "links": a.linkCount.Load()}
}

func (a *exchangeActor) Receive(ctx actor.Context) {
	a.ctx = ctx
	switch m := ctx.Message().(type) {
	case *accepted:
		if !a.accepting {
			m.release()
			m.nc.Close()
			break
		}
		a.spawn(m.nc, nil, m.release)
	case *dialTarget:
		a.dialTarget(m.addr)
	case *dialFallbacks:
		t := &target{addr: m.addrs[0], fallbacks: m.addrs, wanted: true}
		a.targets[t.addr] = t
		a.dial(t)
	case *dialOnce:
		if a.byPeer[m.process] != nil || a.targets[m.addr] != nil {
			break // linked, or dialled anyway
		}
		t := &target{addr: m.addr, wanted: true, once: true}
		a.targets[t.addr] = t
		a.dial(t)
	case *undialTarget:
		if t := a.targets[m.addr]; t != nil {
			t.wanted = false
			if t.timer != nil {
				t.timer.Stop()
			}
			if t.conn == nil && !t.dialling {
				delete(a.targets, m.addr)
			}
		}
	case *dialResult:
		a.dialed(m)
	case *retryTick:
		t := m.t
		if t.waitFor != 0 && a.byPeer[t.waitFor] != nil {
			break // linked over the peer's own connection meanwhile
		}
		if t.wanted && t.conn == nil && !t.dialling {
			a.dial(t)
		}
	case *connection.Handshaked:
		a.handshaked(m.Conn)
	case *connection.Closed:
		a.closed(m)
	case *connection.Moved:
		a.moved(m.Conn, m.Servers)
	case *moveClients:
		m.reply <- a.moveClients()
	case *stopAccepting:
		a.accepting = false
		close(m.done)
	case *releaseOld:
		a.releaseOld(m.t)
	case *queryMoved:
		var ps []registry.ProcessID
		for c := range a.movedLinks {
			ps = append(ps, c.Info().PeerProcess)
		}
		m.reply <- ps
	case *connection.PeerSynced:
		if l := a.conns[m.Conn]; l != nil && m.Conn.State() == connection.StateActive {
			a.x.rt.Sync()
			l.synced = true
			if a.x.ln == nil {
				a.x.rt.Relinked()
			}
			a.notify(LinkEvent{Active: true, Synced: true, Link: m.Conn.Info()})
			if l.target != nil {
				a.movedSynced(l.target)
			}
		}
	case *registry.Change:
		a.change(m)
	case *registry.Dump:
		a.dump(m)
	case *forgetPeer:
		if c := a.byPeer[m.process]; c != nil {
			c.CloseNow(m.reason) // nobody there to wait for
		}
	case *watchLinks:
		if a.observers == nil {
			a.observers = map[uint64]func(LinkEvent){}
		}
		a.observers[m.id] = m.fn
		// Links already up are told first, so a watcher started after
		// the exchange misses none.
		for c, l := range a.conns {
			if c.State() == connection.StateActive {
				m.fn(LinkEvent{Active: true, Link: c.Info()})
				if l.synced {
					m.fn(LinkEvent{Active: true, Synced: true, Link: c.Info()})
				}
			}
		}
		close(m.done)
	case *unwatchLinks:
		delete(a.observers, m.id)
	case *queryLinks:
		m.reply <- a.links()
	case *queryTargets:
		m.reply <- a.targetStatus()
	case *queryPeers:
		m.reply <- a.peerStats()
	case *drain:
		a.stopping = true
		for _, t := range a.targets {
			if t.timer != nil {
				t.timer.Stop()
			}
		}
		a.drained = m.done
		for c := range a.conns {
			c.Shutdown(m.reason)
		}
		a.checkDrained()
	case *actor.Stopping:
		a.stopping = true
		for _, t := range a.targets {
			if t.timer != nil {
				t.timer.Stop()
			}
		}
		for c := range a.conns {
			c.Shutdown("node stopping")
		}
	}
}

// Listening reports whether the exchange accepts links (a server).
func (x *Exchange) Listening() bool { return x.ln != nil }

// Dials reports whether the exchange was configured with peers or
// servers to link to.
func (x *Exchange) Dials() bool { return len(x.cfg.Connect) > 0 }

// Advertised returns the listen address told to peers: Config.Advertise,
// or the bound address.
func (x *Exchange) Advertised() string {
	if x.cfg.Advertise != "" {
		return x.cfg.Advertise
	}
	return x.addr
}
