package exchange

// Moving clients: a draining server tells its clients which servers to
// move to; each client links to one of them, and lets the old link go
// once the new one is synced and nothing it sent over the old one waits
// for an answer (rule 11).

import (
	"slices"
	"strings"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/registry"
)

type (
	stopAccepting struct{ done chan struct{} }
	moveClients   struct{ reply chan int }
	releaseOld    struct{ t *target }
	queryMoved    struct{ reply chan []registry.ProcessID }
)

// releaseEvery is how often a moved client looks whether its old link
// still carries calls waiting for answers; releaseWithin bounds how long
// it keeps the old link for them (the server's drain ends it anyway).
const (
	releaseEvery  = 10 * time.Millisecond
	releaseWithin = time.Minute
)

// StopAccepting closes the listener: a draining server takes no new
// links, while those it has stay up.
func (x *Exchange) StopAccepting() {
	if x.ln != nil {
		x.closeListener()
	}
	done := make(chan struct{})
	x.send(&stopAccepting{done: done})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// MoveClients tells every client linked to this server to move to
// another server of the group (a move frame listing the servers this one
// is linked to; the client adds its own fallbacks). Each client links
// elsewhere, then closes its link here; Links shows how many remain. It
// returns how many clients were told of a server to move to: none when
// this server is linked to no other.
func (x *Exchange) MoveClients() int {
	reply := make(chan int, 1)
	x.send(&moveClients{reply: reply})
	select {
	case n := <-reply:
		return n
	case <-time.After(5 * time.Second):
		return 0
	}
}

// MovedClients returns the processes of the clients that moved away
// from this draining server: it says bye once it can reach each of them
// through another server, so that its peers, told of the new path at
// the same moment, never lose them.
func (x *Exchange) MovedClients() []registry.ProcessID {
	reply := make(chan []registry.ProcessID, 1)
	x.send(&queryMoved{reply: reply})
	select {
	case ps := <-reply:
		return ps
	case <-time.After(5 * time.Second):
		return nil
	}
}

// moveClients sends the move frame to every active client link.
func (a *exchangeActor) moveClients() int {
	var servers []string
	for c := range a.conns {
		if c.State() != connection.StateActive {
			continue
		}
		if p := c.Peer(); p.Role == registry.RoleServer && p.Listen != "" && !slices.Contains(servers, p.Listen) {
			servers = append(servers, p.Listen)
		}
	}
	slices.Sort(servers)
	if len(servers) > connection.MaxMoveServers {
		servers = servers[:connection.MaxMoveServers]
	}
	frame := connection.AppendMove(nil, servers)
	told := 0
	for c := range a.conns {
		if c.State() != connection.StateActive {
			continue
		}
		// Servers are told too: they route around this one from now on.
		if err := c.SendFrame(frame); err == nil && c.Peer().Role == registry.RoleClient {
			told++
		}
	}
	a.x.log.Info("draining: clients told to move", "clients", told, "servers", servers)
	if len(servers) == 0 {
		return 0 // only clients with fallbacks of their own can move
	}
	return told
}

// moved handles a draining server's move frame. A client dials the
// servers named (then its own fallbacks), keeping the old link until the
// new one is synced; a server routes around the draining one.
func (a *exchangeActor) moved(c *connection.Conn, servers []string) {
	l := a.conns[c]
	if l == nil || c.Peer().Role != registry.RoleServer {
		return
	}
	if a.x.cfg.Role == registry.RoleServer {
		// A peer server is draining: prefer any other path.
		a.x.rt.AvoidLink(c)
		return
	}
	t := l.target
	if t == nil || t.conn != c || a.stopping {
		return // moving already, or not a link this client keeps
	}
	old := c.Peer().Listen
	if old == "" {
		old = t.addr
	}
	var next []string
	for _, s := range slices.Concat(servers, t.fallbacks, []string{t.addr}) {
		if s != old && s != t.addr && !slices.Contains(next, s) {
			next = append(next, s)
		}
	}
	if len(next) == 0 {
		a.x.log.Warn("server is draining, and there is no other server to move to", "server", old)
		return
	}
	// The old link no longer belongs to the target: its close must not
	// redial, and what the target dials now replaces it.
	l.target = nil
	t.conn, t.moveFrom = nil, c
	delete(a.targets, t.addr)
	t.fallbacks, t.addr, t.refusals = next, next[0], 0
	if len(next) == 1 {
		t.fallbacks = nil
	}
	a.targets[t.addr] = t
	a.x.log.Info("server is draining; moving", "from", old, "to", t.addr, "servers", next)
	a.dial(t)
}

// movedSynced starts letting the old link go once the new one is synced.
func (a *exchangeActor) movedSynced(t *target) {
	if t.moveFrom != nil {
		t.moveSince = time.Now()
		a.releaseOld(t)
	}
}

// releaseOld closes the link a moved client left once no call waits on
// it, looking again every releaseEvery.
func (a *exchangeActor) releaseOld(t *target) {
	old := t.moveFrom
	if old == nil {
		return
	}
	if a.conns[old] == nil {
		t.moveFrom = nil // the server closed it
		return
	}
	if n := a.x.rt.PendingVia(old); n > 0 && time.Since(t.moveSince) < releaseWithin {
		root, self := a.ctx.ActorSystem().Root, a.ctx.Self()
		time.AfterFunc(releaseEvery, func() { root.Send(self, &releaseOld{t: t}) })
		return
	}
	t.moveFrom = nil
	old.Shutdown(movedTo + t.addr)
}

// movedTo opens the bye of a client that moved to another server.
const movedTo = "moved to "

// movedAway records, on a draining server, the link of a client that
// moved to another server: the withdrawals its close causes here are
// not announced onwards. The client's services are not gone, the other
// servers learn them from its new server, and this one says bye soon,
// which withdraws whatever it announced.
func (a *exchangeActor) movedAway(c *connection.Conn, reason string) {
	if !a.accepting && c.Info().PeerRole == registry.RoleClient && strings.Contains(reason, movedTo) {
		a.movedLinks[c] = true
	}
}
