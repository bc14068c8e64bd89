// Package exchange is the exchange actor of one exchange group: it owns
// the group's links (listening for peers, dialling and redialling them),
// decides which link survives when two processes link twice, and applies
// the audience, group and split-horizon filters to every registry change
// it announces (SPEC §2–3).
package exchange

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strings"
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
	// forever (SPEC rule 11).
	Connect []string
	Retry   time.Duration
	// Tokens, when set, are the shared secrets of the exchange group: a
	// peer must prove it knows one, and this endpoint proves it knows
	// the first (SPEC rule 35). No token crosses the wire. Two at once
	// rotate a token without an outage: give every node both (the old
	// first), then the new one first, then drop the old.
	Tokens []string
	// Admit, when set, decides per remote address whether to accept a
	// connection (SPEC rule 33); an error refuses it with that reason.
	Admit func(remote net.Addr) error
	// ServerTLS and ClientTLS turn on TLS for accepted and dialled links
	// (TLSFiles.Load builds both from PEM files). A dialled link checks
	// the peer's certificate names the host dialled, unless
	// ClientTLS.ServerName is set. A handshake that fails on a
	// certificate, or with a peer that does not speak TLS, is not retried.
	ServerTLS, ClientTLS *tls.Config
	// Link bounds each link (frame size, queues, timeouts, what a client
	// may announce); Budget bounds them all together, across the node's
	// exchanges (SPEC rule 36). A nil Budget is one of the exchange's own
	// with the default limits.
	Link   connection.Config
	Budget *connection.Budget
	Logger *slog.Logger
}

// LinkEvent tells observers a link went up or down (SPEC rule 11), or,
// with Synced, that everything the peer announced at link-up is now in
// this process's registry.
type LinkEvent struct {
	Active bool
	Synced bool
	// Refused is set, with Active false, when a peer this exchange dials
	// refused it (or it refused the peer: group, version or token; or
	// TLS failed on a certificate, or one side does not speak TLS): it
	// will not retry until told to dial again.
	Refused bool
	Link    registry.LinkInfo
	Reason  string // why it went down
}

// LinkStatus describes one link for the console.
type LinkStatus struct {
	ID            string             `json:"id"`
	Role          string             `json:"role"`      // the peer's role
	Direction     string             `json:"direction"` // "out" when this side dialled
	RemoteProcess registry.ProcessID `json:"remote_process"`
	RemoteNode    string             `json:"remote_node"`
	RemoteAddress string             `json:"remote_address"`
	Group         string             `json:"group"`
	State         string             `json:"state"`
	Since         time.Time          `json:"since"`
	FramesIn      uint64             `json:"messages_in"`
	FramesOut     uint64             `json:"messages_out"`
	BytesIn       uint64             `json:"bytes_in"`
	BytesOut      uint64             `json:"bytes_out"`
	Dropped       uint64             `json:"drops"`
	Refused       uint64             `json:"refused"`
	Queued        int64              `json:"queued_bytes"`
	Synced        bool               `json:"synced"`
}

// TargetStatus describes a peer the exchange dials.
type TargetStatus struct {
	Address  string `json:"address"`
	State    string `json:"state"` // linked, dialling, waiting, rejected, duplicate
	LastErr  string `json:"last_error,omitempty"`
	Attempts int    `json:"attempts"`
}

// Exchange is the handle of a running exchange actor.
type Exchange struct {
	stopped  atomic.Bool
	rt       *registry.Kernel
	cfg      Config
	pid      *actor.PID
	addr     string
	ln       net.Listener
	log      *slog.Logger
	refusals refusalCounts
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
		retired: map[string]*PeerStats{}}
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

// Undial stops keeping a link to addr (an established link stays).
func (x *Exchange) Undial(addr string) { x.send(&undialTarget{addr: addr}) }

// Forget closes the link to a process at once, for a peer the cluster
// declared dead: its services are withdrawn without waiting for TCP.
func (x *Exchange) Forget(p registry.ProcessID, reason string) {
	x.send(&forgetPeer{process: p, reason: reason})
}

// WatchLinks calls fn, from the exchange actor, for every link that is
// up now and every link that goes up or down from now on. fn must not
// block.
//
// The returned function ends the watch. On a stopped exchange it returns
// at once and fn is never called.
func (x *Exchange) WatchLinks(fn func(LinkEvent)) (cancel func()) {
	if x.stopped.Load() {
		return func() {}
	}
	id := watchSeq.Add(1)
	done := make(chan struct{})
	x.send(&watchLinks{id: id, fn: fn, done: done})
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		return func() {} // stopped meanwhile
	}
	return func() { x.send(&unwatchLinks{id: id}) }
}

var watchSeq atomic.Uint64

// Links returns the exchange's links.
func (x *Exchange) Links() []LinkStatus {
	reply := make(chan []LinkStatus, 1)
	x.send(&queryLinks{reply: reply})
	select {
	case l := <-reply:
		return l
	case <-time.After(2 * time.Second):
		return nil
	}
}

// Targets returns the peers the exchange dials and how that goes.
func (x *Exchange) Targets() []TargetStatus {
	reply := make(chan []TargetStatus, 1)
	x.send(&queryTargets{reply: reply})
	select {
	case l := <-reply:
		return l
	case <-time.After(2 * time.Second):
		return nil
	}
}

// Stop closes the listener, says bye on every link (after what is
// queued on it), waits for the links to close and stops the actor.
func (x *Exchange) Stop(ctx context.Context) error {
	if x.stopped.Swap(true) {
		return nil
	}
	if x.ln != nil {
		x.ln.Close()
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

// accept hands accepted connections to the actor. A connection past
// the node's bounds on connections still in their handshake (in all, and
// from one host) is refused at once: a stranger holding sockets open
// cannot crowd out the peers (SPEC rule 36).
func (x *Exchange) accept() {
	for {
		nc, err := x.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			x.log.Warn("accept failed", "error", err)
			time.Sleep(50 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		release, ok := x.cfg.Budget.Handshake(nc.RemoteAddr())
		if !ok {
			lim := x.cfg.Budget.Limits()
			x.refuse(nc, refusedBusy, fmt.Sprintf("too many connections in their handshake (at most %d, %d from one host)",
				lim.Handshaking, lim.HandshakingPerHost))
			continue
		}
		if tc, ok := nc.(*tls.Conn); ok {
			// The handshake, in its own goroutine, before admission, so
			// a refusal reaches the peer over TLS.
			go func() {
				if x.handshakeTLS(tc) {
					x.admit(nc, release)
				} else {
					x.refusals.add(refusedTLS)
					release()
				}
			}()
			continue
		}
		x.admit(nc, release)
	}
}

// refuse turns an accepted connection away with a reason, counted and
// logged (few lines: a stranger decides how often this happens).
func (x *Exchange) refuse(nc net.Conn, why refusal, reason string) {
	x.refusals.add(why)
	x.cfg.Budget.LogStranger(x.log, "connection refused", "remote", nc.RemoteAddr().String(), "reason", reason)
	nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	nc.Write(connection.AppendReason(nil, connection.FrameReject, reason))
	nc.Close()
}

// admit hands an accepted connection to the actor, unless Admit refuses
// it; release gives back its room among the connections in a handshake.
func (x *Exchange) admit(nc net.Conn, release func()) {
	if x.cfg.Admit != nil {
		if err := x.cfg.Admit(nc.RemoteAddr()); err != nil {
			release()
			x.refuse(nc, refusedAdmission, "not admitted: "+err.Error())
			return
		}
	}
	if x.stopped.Load() {
		release()
		nc.Close()
		return
	}
	x.send(&accepted{nc: nc, release: release})
}

// check validates a peer's hello (run by the link's reader, before the
// token is proven either way).
func (x *Exchange) check(h connection.Hello) error {
	switch {
	case h.Group != x.cfg.Group:
		return fmt.Errorf("exchange group mismatch: peer is in group %s, this endpoint serves group %s", groupName(h.Group), groupName(x.cfg.Group))
	case h.Process == x.rt.ProcessID():
		return errors.New("connected to itself")
	case x.cfg.Role == registry.RoleClient && h.Role == registry.RoleClient:
		return errors.New("a client endpoint links only to a server, and the peer is a client")
	}
	return nil
}

func (x *Exchange) hello() connection.Hello {
	listen := x.cfg.Advertise
	if listen == "" {
		listen = x.addr
	}
	return connection.Hello{Protocol: connection.Protocol, Process: x.rt.ProcessID(), Node: x.rt.Node(),
		Role: x.cfg.Role, Group: x.cfg.Group, Listen: listen}
}

// --- the actor ---

type link struct {
	conn   *connection.Conn
	target *target // set when this side dialled it
	dumped bool    // the link-up dump was sent; later changes may follow
	synced bool    // the peer's dump is in the registry
	// release gives back the room an accepted connection takes among
	// those in their handshake (nil for dialled ones).
	release func()
}

type target struct {
	addr string
	// fallbacks, for a client, are the servers it may link to, addr
	// among them: it links to one at a time and moves to the next when
	// that one cannot be reached or refuses it.
	fallbacks []string
	refusals  int // fallbacks that refused in a row
	conn      *connection.Conn
	dialling  bool
	timer     *time.Timer
	attempts  int
	lastErr   string
	// rejected is set while the peer refuses this endpoint (token, group,
	// version, TLS); backoff is then the delay before the next try,
	// doubling up to maxBackoff and reset once a link is up (SPEC rule 11).
	rejected bool
	backoff  time.Duration
	// redialNow asks for a dial as soon as the link the target has now
	// closes, without the retry delay: gossip saw the peer alive again.
	redialNow bool
	waitFor   registry.ProcessID // linked to this process over another link (duplicate rule)
	wanted    bool
}

// maxBackoff caps the delay between tries of a peer that refuses this
// endpoint: fixing the peer's configuration heals it within a minute.
const maxBackoff = time.Minute

type (
	accepted struct {
		nc      net.Conn
		release func()
	}
	dialTarget    struct{ addr string }
	dialFallbacks struct{ addrs []string }
	undialTarget  struct{ addr string }
	dialResult    struct {
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
	x         *Exchange
	ctx       actor.Context
	conns     map[*connection.Conn]*link
	byPeer    map[registry.ProcessID]*connection.Conn
	targets   map[string]*target
	observers map[uint64]func(LinkEvent)
	retired   map[string]*PeerStats // counters of closed links, by peer label
	stopping  bool
	drained   chan struct{} // closed once every link is gone after a drain
	linkCount atomic.Int64
}

func (a *exchangeActor) detail() map[string]any {
	return map[string]any{"group": a.x.cfg.Group, "role": a.x.cfg.Role.String(), "listen": a.x.addr, "links": a.linkCount.Load()}
}

func (a *exchangeActor) Receive(ctx actor.Context) {
	a.ctx = ctx
	switch m := ctx.Message().(type) {
	case *accepted:
		a.spawn(m.nc, nil, m.release)
	case *dialTarget:
		a.dialTarget(m.addr)
	case *dialFallbacks:
		t := &target{addr: m.addrs[0], fallbacks: m.addrs, wanted: true}
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
		// Filled in with the drain (a client moves to another server).
		a.x.log.Debug("server asks this client to move", "link", m.Conn.ID(), "servers", m.Servers)
	case *connection.PeerSynced:
		if l := a.conns[m.Conn]; l != nil && m.Conn.State() == connection.StateActive {
			a.x.rt.Sync()
			l.synced = true
			a.notify(LinkEvent{Active: true, Synced: true, Link: m.Conn.Info()})
		}
	case *registry.Change:
		a.change(m)
	case *registry.Dump:
		a.dump(m)
	case *forgetPeer:
		if c := a.byPeer[m.process]; c != nil {
			c.Shutdown(m.reason)
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

func (a *exchangeActor) spawn(nc net.Conn, t *target, release func()) {
	if release == nil {
		release = func() {}
	}
	if a.stopping {
		release()
		nc.Close()
		return
	}
	x := a.x
	id := fmt.Sprintf("link-%d", linkSeq.Add(1))
	c := connection.New(x.rt, nc, connection.Params{
		Config: x.cfg.Link, ID: id, Local: x.hello(), Dialed: t != nil,
		Exchange: a.ctx.Self(), Check: x.check, Tokens: x.cfg.Tokens, Budget: x.cfg.Budget, Logger: x.log,
	})
	if _, err := a.ctx.SpawnNamed(c.Props(), id); err != nil {
		x.log.Error("cannot start link", "error", err)
		release()
		nc.Close()
		return
	}
	a.conns[c] = &link{conn: c, target: t, release: release}
	a.linkCount.Store(int64(len(a.conns)))
	if t != nil {
		t.conn = c
	}
}

func (a *exchangeActor) dialTarget(addr string) {
	t := a.targets[addr]
	if t == nil {
		t = &target{addr: addr}
		a.targets[addr] = t
	}
	t.wanted = true
	switch {
	case t.conn != nil:
		// Up, or closing (a peer declared dead, now alive again): once
		// this one is gone, dial at once rather than after the delay.
		t.redialNow = true
	case !t.dialling:
		a.dial(t)
	}
}

func (a *exchangeActor) dial(t *target) {
	if a.stopping {
		return
	}
	t.dialling = true
	t.attempts++
	root, self, x := a.ctx.ActorSystem().Root, a.ctx.Self(), a.x
	timeout := min(x.cfg.Retry, 5*time.Second)
	go func() {
		d := net.Dialer{Timeout: timeout}
		nc, err := d.Dial("tcp", t.addr)
		permanent := false
		if err == nil && x.cfg.ClientTLS != nil {
			var tc *tls.Conn
			if tc, permanent, err = tlsDial(nc, x.cfg.ClientTLS, t.addr, timeout); err == nil {
				nc = tc
			}
		}
		root.Send(self, &dialResult{t: t, nc: nc, err: err, permanent: permanent})
	}()
}

func (a *exchangeActor) dialed(m *dialResult) {
	t := m.t
	t.dialling = false
	if m.err != nil && m.permanent && a.nextFallback(t) {
		a.x.log.Error("cannot link to server; trying the next", "server", t.addr, "reason", m.err)
		t.lastErr = m.err.Error()
		a.dial(t)
		return
	}
	if m.err != nil && m.permanent {
		t.lastErr = m.err.Error()
		a.refused(t, m.err.Error())
		a.notify(LinkEvent{Refused: true, Link: registry.LinkInfo{ExchangeGroup: a.x.cfg.Group, LocalRole: a.x.cfg.Role, PeerAddress: t.addr}, Reason: m.err.Error()})
		return
	}
	if m.err != nil {
		if t.lastErr != m.err.Error() {
			a.x.log.Info("cannot reach peer; will retry", "peer", t.addr, "retry", a.x.cfg.Retry, "error", m.err)
		}
		t.lastErr = m.err.Error()
		if len(t.fallbacks) > 1 {
			t.refusals = 0
			a.rotate(t)
		}
		a.retryLater(t)
		return
	}
	if !t.wanted || a.stopping {
		m.nc.Close()
		return
	}
	a.spawn(m.nc, t, nil)
}

// rotate moves a client's target to its next server.
func (a *exchangeActor) rotate(t *target) {
	i := slices.Index(t.fallbacks, t.addr)
	next := t.fallbacks[(i+1)%len(t.fallbacks)]
	delete(a.targets, t.addr)
	t.addr = next
	a.targets[t.addr] = t
}

// nextFallback moves a client refused by one server to the next, and
// reports false once every server has refused it in a row.
func (a *exchangeActor) nextFallback(t *target) bool {
	if len(t.fallbacks) < 2 {
		return false
	}
	t.refusals++
	if t.refusals >= len(t.fallbacks) {
		return false
	}
	a.rotate(t)
	return true
}

// refused records that the peer refused this endpoint: retrying cannot
// help until someone changes a configuration, so the delay doubles, from
// the retry delay up to maxBackoff (SPEC rule 11).
func (a *exchangeActor) refused(t *target, reason string) {
	t.rejected = true
	t.backoff = min(max(2*t.backoff, a.x.cfg.Retry), maxBackoff)
	a.x.log.Error("peer refused this node; retrying later", "peer", t.addr, "retry", t.backoff, "reason", reason)
	a.retryLater(t)
}

// retryLater dials t again after the retry delay ±20 % (a refused
// target after its backoff), so peers that lost a server together do not
// all dial at the same moment.
func (a *exchangeActor) retryLater(t *target) {
	if !t.wanted || a.stopping {
		return
	}
	delay := jitter(a.x.cfg.Retry)
	if t.rejected {
		delay = jitter(t.backoff)
	}
	root, self := a.ctx.ActorSystem().Root, a.ctx.Self()
	if t.timer != nil {
		t.timer.Stop()
	}
	t.timer = time.AfterFunc(delay, func() { root.Send(self, &retryTick{t: t}) })
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// handshaked activates a link whose hello was accepted, unless the
// process is already linked: then the link dialled by the process with
// the smaller id survives, so both ends keep the same one (SPEC rule 10).
func (a *exchangeActor) handshaked(c *connection.Conn) {
	l := a.conns[c]
	if l == nil || c.State() != connection.StateHandshaking {
		return
	}
	l.release()
	peer := c.Peer().Process
	if old := a.byPeer[peer]; old != nil && old != c {
		keepNew := a.survives(c, old)
		loser, winner := c, old
		if keepNew {
			loser, winner = old, c
		}
		a.x.log.Warn("already linked to process; closing the duplicate link", "peer", c.Peer().Node,
			"process", peer, "kept", winner.ID(), "closed", loser.ID())
		if lt := a.conns[loser].target; lt != nil {
			lt.waitFor = peer
		}
		loser.Shutdown(fmt.Sprintf("%s: %s and %s are already linked over %s", connection.DuplicateLink, a.x.rt.Node(), c.Peer().Node, winner.ID()))
		if !keepNew {
			return
		}
		a.unlinked(old, "replaced by "+c.ID())
	}
	c.Activate()
	a.byPeer[peer] = c
	if t := l.target; t != nil {
		t.lastErr, t.attempts, t.waitFor, t.refusals = "", 0, 0, 0
		t.rejected, t.backoff = false, 0
	}
	info := c.Info()
	a.x.log.Info("link up", "link", c.ID(), "peer", info.PeerNode, "process", info.PeerProcess, "remote", info.PeerAddress, "role", info.PeerRole)
	a.notify(LinkEvent{Active: true, Link: info})
	a.x.rt.RequestDump(a.ctx.Self(), c)
}

// survives reports whether link c should replace the established old one.
func (a *exchangeActor) survives(c, old *connection.Conn) bool {
	self, peer := a.x.rt.ProcessID(), c.Peer().Process
	dialer := func(k *connection.Conn) registry.ProcessID {
		if k.Dialed() {
			return self
		}
		return peer
	}
	smaller := min(self, peer)
	if dialer(old) == smaller && dialer(c) != smaller {
		return false
	}
	if dialer(c) == smaller && dialer(old) != smaller {
		return true
	}
	return true // both dialled by the same side: the old one is stale
}

// unlinked forgets an active link: everything learned through it is
// withdrawn and requests waiting on it fail (SPEC rules 9, 17).
func (a *exchangeActor) unlinked(c *connection.Conn, reason string) {
	peer := c.Peer().Process
	if a.byPeer[peer] != c {
		return
	}
	delete(a.byPeer, peer)
	a.x.rt.LinkDown(c)
	a.notify(LinkEvent{Active: false, Link: c.Info(), Reason: reason})
	// Targets that stood down for this link must now dial themselves.
	for _, t := range a.targets {
		if t.waitFor == peer && t.conn == nil && !t.dialling {
			t.waitFor = 0
			a.retryLater(t)
		}
	}
}

func (a *exchangeActor) checkDrained() {
	if a.drained != nil && len(a.conns) == 0 {
		close(a.drained)
		a.drained = nil
	}
}

func (a *exchangeActor) closed(m *connection.Closed) {
	c := m.Conn
	l := a.conns[c]
	if l == nil {
		return
	}
	delete(a.conns, c)
	a.linkCount.Store(int64(len(a.conns)))
	a.retire(c)
	l.release()
	if m.Rejected && !c.Dialed() {
		a.x.refusals.add(classify(m.Reason))
	}
	defer a.checkDrained()
	if m.WasActive {
		a.unlinked(c, m.Reason)
	}
	// Whatever the link imported is withdrawn, whether it was ever
	// activated or not: its reader may have imported announcements
	// before the exchange closed it as a duplicate, or after a newer
	// link replaced it. The connection's reader has stopped by now.
	if c.Info().PeerProcess != 0 {
		a.x.rt.LinkDown(c)
	}
	t := l.target
	if t == nil || t.conn != c {
		return
	}
	t.conn = nil
	t.lastErr = m.Reason
	redialNow := t.redialNow
	t.redialNow = false
	duplicate := strings.Contains(m.Reason, connection.DuplicateLink)
	if duplicate {
		// The peer kept its own link to us: wait for it rather than
		// redial into the same refusal. retryTick looks again, in case
		// that link never comes up here.
		t.waitFor = c.Info().PeerProcess
	}
	switch {
	case m.Rejected && a.nextFallback(t):
		a.x.log.Error("server refused this client; trying the next", "server", c.Info().PeerAddress, "reason", m.Reason)
		a.dial(t)
	case m.Rejected:
		a.refused(t, m.Reason)
		a.notify(LinkEvent{Refused: true, Link: c.Info(), Reason: m.Reason})
	case t.waitFor != 0 && a.byPeer[t.waitFor] != nil:
		// Linked over another connection: dial again only when it goes.
	case redialNow && t.wanted:
		a.dial(t)
	default:
		if !duplicate {
			t.waitFor = 0
		}
		if len(t.fallbacks) > 1 && !duplicate {
			// The server went: try another, it may still be up.
			t.refusals = 0
			a.rotate(t)
		}
		a.retryLater(t)
	}
}

func (a *exchangeActor) notify(ev LinkEvent) {
	for _, fn := range a.observers {
		fn(ev)
	}
}

// change announces a registry change on every link the filters allow.
func (a *exchangeActor) change(c *registry.Change) {
	var frame []byte
	for conn, l := range a.conns {
		if !l.dumped || conn.State() != connection.StateActive {
			continue
		}
		if !Exports(*c, conn.Info(), a.x.cfg.Role) {
			continue
		}
		if frame == nil {
			frame = appendChange(nil, *c)
		}
		if err := conn.SendFrame(frame); err != nil {
			a.x.log.Warn("cannot announce on link", "link", conn.ID(), "error", err)
		}
	}
}

func appendChange(b []byte, c registry.Change) []byte {
	switch c.Kind {
	case registry.Joined, registry.Left:
		return connection.AppendGroup(b, c)
	}
	return connection.AppendAnnounce(b, c)
}

// dump sends a new link everything the filters allow (SPEC rule 8).
func (a *exchangeActor) dump(d *registry.Dump) {
	conn, ok := d.Link.(*connection.Conn)
	if !ok {
		return
	}
	l := a.conns[conn]
	if l == nil || conn.State() != connection.StateActive {
		return
	}
	info := conn.Info()
	var batch []byte
	for _, c := range d.Changes {
		if Exports(c, info, a.x.cfg.Role) {
			batch = appendChange(batch, c)
		}
	}
	batch = connection.AppendSynced(batch)
	{
		if err := conn.SendFrame(batch); err != nil {
			a.x.log.Warn("cannot send the link-up dump", "link", conn.ID(), "error", err)
		}
	}
	l.dumped = true
}

func (a *exchangeActor) links() []LinkStatus {
	out := make([]LinkStatus, 0, len(a.conns))
	for c := range a.conns {
		info, s := c.Info(), c.Stats()
		dir := "in"
		if c.Dialed() {
			dir = "out"
		}
		out = append(out, LinkStatus{
			ID: c.ID(), Role: info.PeerRole.String(), Direction: dir, RemoteProcess: info.PeerProcess,
			RemoteNode: info.PeerNode, RemoteAddress: info.PeerAddress, Group: info.ExchangeGroup,
			State: connection.StateName(c.State()), Since: c.Since(), FramesIn: s.FramesIn, FramesOut: s.FramesOut,
			BytesIn: s.BytesIn, BytesOut: s.BytesOut, Dropped: s.ReportsDropped, Refused: s.RequestsRefused, Queued: s.Queued,
			Synced: a.conns[c].synced,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (a *exchangeActor) targetStatus() []TargetStatus {
	out := make([]TargetStatus, 0, len(a.targets))
	for _, t := range a.targets {
		st := "waiting"
		switch {
		case t.conn != nil && t.conn.State() == connection.StateActive:
			st = "linked"
		case t.dialling || t.conn != nil:
			st = "dialling"
		case t.rejected:
			st = "rejected"
		case t.waitFor != 0:
			st = "duplicate"
		}
		out = append(out, TargetStatus{Address: t.addr, State: st, LastErr: t.lastErr, Attempts: t.attempts})
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].Address, out[j].Address) < 0 })
	return out
}
