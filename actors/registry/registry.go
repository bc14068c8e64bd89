package registry

import (
	"slices"

	"github.com/asynkron/protoactor-go/actor"
)

// The registry is one actor per process. It alone changes the
// bindings, so every watcher sees changes in the order they happened
// (rule 12). Lookups and envelope routing read the index (index.go) under a
// read lock instead of asking the actor: that keeps the registry off the
// envelope path, where each actor hop would cost microseconds.

// Messages the registry actor handles.
type (
	regAddLocal struct {
		ref  *Local
		done chan error
	}
	regAnnounce    struct{ ref *Local }
	regRemoveLocal struct {
		ref  *Local
		done chan struct{}
	}
	regGroup struct {
		addr   Address
		group  string
		joined bool
	}
	regWatch struct {
		w *watcher
	}
	regUnwatch struct {
		id uint64
	}
	regImport struct {
		link   Link
		change Change
	}
	regLinkDown struct {
		link Link
		done chan struct{}
	}
	regAttach struct {
		pid  *actor.PID
		done chan struct{}
	}
	regDetach struct{ pid *actor.PID }
	regDump   struct {
		pid  *actor.PID
		link Link
	}
	regSync struct{ done chan struct{} }
)

const (
	watchName watchKind = iota + 1
	watchAddress
	watchGroup
	watchAll
)

type registry struct {
	rt  *Kernel
	ix  *index
	seq uint64

	watchers  map[uint64]*watcher
	byName    map[string]map[uint64]*watcher
	byAddr    map[Address]map[uint64]*watcher
	byGroup   map[string]map[uint64]*watcher
	all       map[uint64]*watcher
	exchanges []*actor.PID
	ctx       actor.Context
}

func newRegistry(rt *Kernel) *registry {
	return &registry{
		rt: rt, ix: rt.ix,
		watchers: map[uint64]*watcher{},
		byName:   map[string]map[uint64]*watcher{},
		byAddr:   map[Address]map[uint64]*watcher{},
		byGroup:  map[string]map[uint64]*watcher{},
		all:      map[uint64]*watcher{},
	}
}

func (r *registry) Receive(ctx actor.Context) {
	r.ctx = ctx
	switch m := ctx.Message().(type) {
	case *regAddLocal:
		m.done <- r.addLocal(m.ref)
	case *regAnnounce:
		r.announce(m.ref)
	case *regRemoveLocal:
		r.removeLocal(m.ref)
		close(m.done)
	case *regGroup:
		r.group(m.addr, m.group, m.joined, nil)
	case *regWatch:
		r.watch(m.w)
	case *regUnwatch:
		r.unwatch(m.id)
	case *regImport:
		r.imported(m.link, m.change)
	case *regLinkDown:
		r.linkDown(m.link)
		if m.done != nil {
			close(m.done)
		}
	case *regAttach:
		r.exchanges = append(r.exchanges, m.pid)
		close(m.done)
	case *regDetach:
		r.exchanges = slices.DeleteFunc(r.exchanges, func(p *actor.PID) bool { return p.Equal(m.pid) })
	case *regDump:
		r.dump(m.pid, m.link)
	case *regSync:
		close(m.done)
	case *regDrain:
		r.drain()
		close(m.done)
	case *regAvoid:
		r.avoidLink(m.link)
	}
}

// --- local services ---

func (r *registry) addLocal(ref *Local) error {
	r.ix.wlock()
	r.ix.locals[ref.id] = ref
	r.ix.wunlock()
	if !ref.hidden.Load() {
		r.announce(ref)
	}
	return nil
}

func (r *registry) announce(ref *Local) {
	ref.hidden.Store(false)
	if ref.name == "" || r.ix.lookup(ref.addr) != nil || r.rt.draining.Load() {
		return // anonymous agents (callers, watchers) are never listed
	}
	r.seq++
	e := &entry{
		name: ref.name, audience: ref.audience, node: r.rt.node,
		addr: ref.addr, seq: r.seq, local: ref,
		groups: slices.Clone(ref.groups),
	}
	r.add(e, nil)
}

func (r *registry) removeLocal(ref *Local) {
	// Callers waiting on a service that stops because the runtime is
	// closing learn that it is shutting down, as Close promises.
	code := CodeWithdrawn
	if r.rt.closing.Load() {
		code = CodeShutdown
	}
	if e := r.ix.lookup(ref.addr); e != nil && e.local == ref {
		r.remove(e, code)
	}
	r.ix.wlock()
	delete(r.ix.locals, ref.id)
	r.ix.wunlock()
	// Watchers of an unlisted agent's address learn it is gone too.
	r.goneAddress(ref.addr)
	r.rt.pending.failTarget(ref.addr, RuntimeFailuref(code, "%s was withdrawn before the response arrived", ref.addr))
}

// --- bindings ---

// add makes e visible and tells watchers and exchanges.
func (r *registry) add(e *entry, origin Link) {
	r.ix.wlock()
	r.ix.byAddr[e.addr] = e
	r.ix.insertName(e)
	for _, g := range e.groups {
		r.groupIndex(g)[e.addr] = e
	}
	b := e.binding()
	r.ix.wunlock()

	ev := RegistryEvent{Kind: Available, Binding: b}
	r.notify(ev, r.all, r.byName[e.name], r.byAddr[e.addr])
	for _, g := range b.Groups {
		r.notify(RegistryEvent{Kind: Joined, Binding: b, Group: g}, r.all, r.byAddr[e.addr], r.byGroup[g])
	}
	r.feed(Change{Kind: Available, Binding: b, Origin: origin})
}

func (r *registry) groupIndex(g string) map[Address]*entry {
	m := r.ix.byGroup[g]
	if m == nil {
		m = map[Address]*entry{}
		r.ix.byGroup[g] = m
	}
	return m
}

// remove withdraws e: group leaves first, then the withdrawal (REG5), and
// fails every request still waiting on it.
func (r *registry) remove(e *entry, code Code) { r.withdraw(e, code, false) }

// withdraw is remove; for a draining service it leaves the requests
// waiting on e alone, since it still answers them, and says so onwards.
func (r *registry) withdraw(e *entry, code Code, draining bool) {
	if !draining {
		e.withdrawn.Store(true)
	}
	r.ix.wlock()
	b := e.binding()
	origin := e.via()
	delete(r.ix.byAddr, e.addr)
	r.ix.removeName(e)
	for _, g := range e.groups {
		if m := r.ix.byGroup[g]; m != nil {
			delete(m, e.addr)
			if len(m) == 0 {
				delete(r.ix.byGroup, g)
				r.ix.turns.Delete("\x00" + g)
			}
		}
	}
	r.ix.wunlock()

	for _, g := range b.Groups {
		r.notify(RegistryEvent{Kind: Left, Binding: b, Group: g}, r.all, r.byAddr[e.addr], r.byGroup[g])
	}
	r.notify(RegistryEvent{Kind: Withdrawn, Binding: b}, r.all, r.byName[e.name], r.byAddr[e.addr])
	r.feed(Change{Kind: Withdrawn, Binding: b, Origin: origin, Draining: draining})
	if !draining {
		r.rt.pending.failTarget(e.addr, RuntimeFailuref(code, "%s (%s) was withdrawn before the response arrived", e.name, e.addr))
	}
}

// group records a service joining or leaving a service group (REG6).
func (r *registry) group(addr Address, g string, joined bool, from Link) {
	if g == "" {
		return
	}
	if ref := r.ix.local(addr.ID); addr.Process == r.rt.pid && ref != nil {
		// Keep the agent's own list current, so a hidden service that
		// joins groups announces them when it appears.
		if joined && !slices.Contains(ref.groups, g) {
			ref.groups = append(ref.groups, g)
		} else if !joined {
			ref.groups = slices.DeleteFunc(ref.groups, func(x string) bool { return x == g })
		}
	}
	e := r.ix.lookup(addr)
	if e == nil {
		return
	}
	r.ix.wlock()
	has := slices.Contains(e.groups, g)
	if has == joined {
		r.ix.wunlock()
		return // joining twice or leaving what was not joined does nothing
	}
	if joined {
		e.groups = append(slices.Clone(e.groups), g)
		r.groupIndex(g)[addr] = e
	} else {
		e.groups = slices.DeleteFunc(slices.Clone(e.groups), func(x string) bool { return x == g })
		if m := r.ix.byGroup[g]; m != nil {
			delete(m, addr)
			if len(m) == 0 {
				delete(r.ix.byGroup, g)
				r.ix.turns.Delete("\x00" + g)
			}
		}
	}
	b := e.binding()
	origin := e.via()
	r.ix.wunlock()
	kind := Left
	if joined {
		kind = Joined
	}
	ev := RegistryEvent{Kind: kind, Binding: b, Group: g}
	r.notify(ev, r.all, r.byAddr[addr], r.byGroup[g])
	r.feed(Change{Kind: kind, Binding: b, Group: g, Origin: origin})
}

// --- watches ---

// --- exchanges ---

// --- remote bindings ---
