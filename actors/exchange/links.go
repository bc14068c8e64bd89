package exchange

// A link's life as the exchange sees it: started, accepted by both sides,
// the duplicate rule (rule 10), and closed.

import (
	"fmt"
	"net"
	"strings"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/registry"
)

type link struct {
	conn   *connection.Conn
	target *target // set when this side dialled it
	dumped bool    // the link-up dump was sent; later changes may follow
	synced bool    // the peer's dump is in the registry
	// release gives back the room an accepted connection takes among
	// those in their handshake (nil for dialled ones).
	release func()
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

// handshaked activates a link whose hello was accepted, unless the
// process is already linked: then the link dialled by the process with
// the smaller id survives, so both ends keep the same one (rule 10).
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
		t.rejected, t.backoff, t.wasUp = false, 0, true
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
// withdrawn and requests waiting on it fail (rules 9, 17).
func (a *exchangeActor) unlinked(c *connection.Conn, reason string) {
	peer := c.Peer().Process
	if a.byPeer[peer] != c {
		return
	}
	delete(a.byPeer, peer)
	a.relinking() // before LinkDown withdraws what the link brought
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
	a.movedAway(c, m.Reason)
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
	redialNow := t.redialNow || (m.WasActive && t.wasUp && !m.Rejected)
	t.redialNow, t.wasUp = false, false
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
	case redialNow && t.wanted && !duplicate:
		if len(t.fallbacks) > 1 {
			t.refusals = 0
			a.rotate(t)
		}
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

// relinking tells the kernel when this is a client endpoint left without
// a link: calls by name that find nothing wait for the resync, up to a
// retry delay (rule 13).
func (a *exchangeActor) relinking() {
	if a.x.ln == nil && len(a.byPeer) == 0 && !a.stopping {
		a.x.rt.Relinking(a.x.cfg.Retry)
	}
}
