package connection

// The bounds on what a peer announces over a link (rule 36): the
// bindings, processes and group joins a link holds, counted against the
// link's bounds and the node's.

import (
	"fmt"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// announced is what the peer announced on this link and the link still
// holds: the bounds of rule 36 count it.
type announced struct {
	bindings  map[registry.Address]struct{}
	processes map[registry.ProcessID]struct{}
	joins     map[registry.Address]map[string]struct{}
	joinCount int
}

// admit applies the bounds of rule 36 to an announcement: on a
// client link one past a bound closes the link (the error); on a link
// between servers it is refused (false), counted and logged, and the
// link goes on.
func (rd *frameReader) admit(ch registry.Change) (bool, error) {
	c, a, b := rd.c, &rd.announced, rd.c.p.Budget
	addr := ch.Binding.Address
	refuse := func(what string, limit int64) (bool, error) {
		if !rd.betweenServers {
			return false, fmt.Errorf("%s: the limit is %d", what, limit)
		}
		c.announcementsRefused.Add(1)
		c.refusedLog.Do(func() {
			c.log.Warn("refusing announcements from a server", "peer", c.Info().PeerNode, "reason", what, "limit", limit,
				"refused", c.announcementsRefused.Load())
		})
		return false, nil
	}
	switch {
	case ch.Kind == registry.Joined || ch.Kind == registry.Left:
		joins := a.joins[addr]
		_, has := joins[ch.Group]
		if ch.Kind == registry.Left {
			if has {
				delete(joins, ch.Group)
				a.joinCount--
			}
			return true, nil
		}
		if has {
			return true, nil
		}
		if a.joinCount >= c.p.Config.GroupJoins {
			return refuse("too many service-group joins on one link", int64(c.p.Config.GroupJoins))
		}
		if joins == nil {
			if a.joins == nil {
				a.joins = map[registry.Address]map[string]struct{}{}
			}
			joins = map[string]struct{}{}
			a.joins[addr] = joins
		}
		joins[ch.Group] = struct{}{}
		a.joinCount++
	case ch.Process && ch.Kind == registry.Withdrawn:
		if _, has := a.processes[addr.Process]; has {
			delete(a.processes, addr.Process)
			b.chargeBindings(-1, true)
			// Its services go with it in the registry; forget them here.
			for s := range a.bindings {
				if s.Process == addr.Process {
					rd.forget(s)
				}
			}
		}
	case ch.Process:
		if _, has := a.processes[addr.Process]; has {
			return true, nil
		}
		if !rd.betweenServers && len(a.processes) >= c.p.Config.ClientProcesses {
			return refuse("a client link announced too many processes", int64(c.p.Config.ClientProcesses))
		}
		if !b.chargeBindings(1, false) {
			return refuse("the node holds as many remote bindings as it may", b.limits.Bindings)
		}
		if a.processes == nil {
			a.processes = map[registry.ProcessID]struct{}{}
		}
		a.processes[addr.Process] = struct{}{}
	case ch.Kind == registry.Withdrawn:
		if _, has := a.bindings[addr]; has {
			rd.forget(addr)
		}
	default: // a binding available
		if _, has := a.bindings[addr]; has {
			return true, nil
		}
		if !rd.betweenServers && len(a.bindings) >= c.p.Config.ClientBindings {
			return refuse("a client link announced too many services", int64(c.p.Config.ClientBindings))
		}
		if len(ch.Binding.Groups) > 0 {
			if a.joinCount+len(ch.Binding.Groups) > c.p.Config.GroupJoins {
				return refuse("too many service-group joins on one link", int64(c.p.Config.GroupJoins))
			}
		}
		if !b.chargeBindings(1, false) {
			return refuse("the node holds as many remote bindings as it may", b.limits.Bindings)
		}
		if a.bindings == nil {
			a.bindings = map[registry.Address]struct{}{}
		}
		a.bindings[addr] = struct{}{}
		if len(ch.Binding.Groups) > 0 {
			if a.joins == nil {
				a.joins = map[registry.Address]map[string]struct{}{}
			}
			joins := map[string]struct{}{}
			for _, g := range ch.Binding.Groups {
				joins[g] = struct{}{}
			}
			a.joins[addr] = joins
			a.joinCount += len(joins)
		}
	}
	return true, nil
}

// forget drops a binding the peer withdrew, with its group joins.
func (rd *frameReader) forget(addr registry.Address) {
	a := &rd.announced
	delete(a.bindings, addr)
	a.joinCount -= len(a.joins[addr])
	delete(a.joins, addr)
	rd.c.p.Budget.chargeBindings(-1, true)
}
