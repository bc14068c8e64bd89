package exchange

// What an exchange announces on its links: registry changes and the
// link-up dump, each through the filters of filter.go.

import (
	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/registry"
)

// change announces a registry change on every link the filters allow.
func (a *exchangeActor) change(c *registry.Change) {
	if c.Kind == registry.Withdrawn && c.Origin != nil && len(a.movedLinks) > 0 {
		if mc, ok := c.Origin.(*connection.Conn); ok && a.movedLinks[mc] {
			return
		}
	}
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

// dump sends a new link everything the filters allow (rule 8).
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
