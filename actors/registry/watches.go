package registry

// Registry watches (rule 12): who watches what, the snapshot a new
// watch gets first, then each change, from the registry actor.

import (
	"github.com/asynkron/protoactor-go/actor"
)

type watchKind uint8

// watcher is one registry watch; events go to pid as *WatchEvent.
type watcher struct {
	id    uint64
	pid   *actor.PID
	kind  watchKind
	name  string // name or group
	addr  Address
	ready chan struct{} // closed once the snapshot is queued; may be nil
}

func (r *registry) watch(w *watcher) {
	r.watchers[w.id] = w
	var set map[uint64]*watcher
	switch w.kind {
	case watchName:
		set = r.byName[w.name]
		if set == nil {
			set = map[uint64]*watcher{}
			r.byName[w.name] = set
		}
	case watchAddress:
		set = r.byAddr[w.addr]
		if set == nil {
			set = map[uint64]*watcher{}
			r.byAddr[w.addr] = set
		}
	case watchGroup:
		set = r.byGroup[w.name]
		if set == nil {
			set = map[uint64]*watcher{}
			r.byGroup[w.name] = set
		}
	case watchAll:
		set = r.all
	}
	set[w.id] = w
	// The snapshot goes first, from the same actor, so no change can slip
	// between it and the live events (REG1).
	for _, ev := range r.snapshot(w) {
		r.ctx.Send(w.pid, &WatchEvent{ID: w.id, Event: ev})
	}
	if w.kind == watchAddress && !r.reachable(w.addr) {
		r.ctx.Send(w.pid, &WatchEvent{ID: w.id, Event: RegistryEvent{Kind: Withdrawn, Binding: Binding{Address: w.addr}}})
	}
	if w.ready != nil {
		close(w.ready)
	}
}

// reachable reports whether an address may still be served: a visible
// binding, a live local agent, or a process this one can reach.
func (r *registry) reachable(a Address) bool {
	r.ix.mu.RLock()
	defer r.ix.mu.RUnlock()
	if r.ix.byAddr[a] != nil {
		return true
	}
	if a.Process == r.rt.pid {
		return r.ix.locals[a.ID] != nil
	}
	if pe := r.ix.procs[a.Process]; pe != nil {
		return true
	}
	return r.ix.learned[a.Process] != nil
}

func (r *registry) snapshot(w *watcher) []RegistryEvent {
	r.ix.mu.RLock()
	defer r.ix.mu.RUnlock()
	var out []RegistryEvent
	withGroups := func(e *entry) {
		b := e.binding()
		out = append(out, RegistryEvent{Kind: Available, Binding: b})
		for _, g := range b.Groups {
			out = append(out, RegistryEvent{Kind: Joined, Binding: b, Group: g})
		}
	}
	switch w.kind {
	case watchName:
		for _, e := range r.ix.byName[w.name] {
			out = append(out, RegistryEvent{Kind: Available, Binding: e.binding()})
		}
	case watchAddress:
		if e := r.ix.byAddr[w.addr]; e != nil {
			withGroups(e)
		}
	case watchGroup:
		for _, e := range sortedEntries(r.ix.byGroup[w.name]) {
			out = append(out, RegistryEvent{Kind: Joined, Binding: e.binding(), Group: w.name})
		}
	case watchAll:
		for _, e := range sortedEntries(r.ix.byAddr) {
			withGroups(e)
		}
	}
	return out
}

func (r *registry) unwatch(id uint64) {
	w := r.watchers[id]
	if w == nil {
		return
	}
	delete(r.watchers, id)
	switch w.kind {
	case watchName:
		deleteWatcher(r.byName, w.name, id)
	case watchAddress:
		deleteWatcher(r.byAddr, w.addr, id)
	case watchGroup:
		deleteWatcher(r.byGroup, w.name, id)
	case watchAll:
		delete(r.all, id)
	}
}

func deleteWatcher[K comparable](m map[K]map[uint64]*watcher, k K, id uint64) {
	if set := m[k]; set != nil {
		delete(set, id)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

// notify sends ev to every watcher in the sets. A watcher is in exactly
// one set, so nobody hears an event twice.
func (r *registry) notify(ev RegistryEvent, sets ...map[uint64]*watcher) {
	for _, set := range sets {
		for id, w := range set {
			r.ctx.Send(w.pid, &WatchEvent{ID: id, Event: ev})
		}
	}
}

// goneAddress tells address watchers that a in no longer reachable, for
// addresses that had no visible binding (whose removal told them already).
func (r *registry) goneAddress(a Address) {
	if set := r.byAddr[a]; len(set) > 0 && r.ix.lookup(a) == nil {
		r.notify(RegistryEvent{Kind: Withdrawn, Binding: Binding{Address: a}}, set)
	}
}
