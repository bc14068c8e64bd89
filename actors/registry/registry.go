package registry

import (
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// The registry is one actor per process (SPEC §1). It alone changes the
// bindings, so every watcher sees changes in the order they happened
// (rule 12). Lookups and envelope routing read the index below under a
// read lock instead of asking the actor: that keeps the registry off the
// envelope path, where each actor hop would cost microseconds.

// source is one link a remote binding or process was learned through.
type source struct {
	link Link
	hops int
	seq  uint64
}

// entry is one service binding.
type entry struct {
	name, audience, node string
	addr                 Address
	seq                  uint64 // when first seen: the tie-break of rule 13
	local                *Local // nil for remote bindings
	withdrawn            atomic.Bool

	// Guarded by index.mu; changed only by the registry actor.
	groups  []string
	sources []source // remote only; sources[0] is the preferred route
}

func (e *entry) hops() int {
	if e.local != nil || len(e.sources) == 0 {
		return 0
	}
	return e.sources[0].hops
}

func (e *entry) via() Link {
	if e.local != nil || len(e.sources) == 0 {
		return nil
	}
	return e.sources[0].link
}

// binding copies the entry for users. Call with index.mu held.
func (e *entry) binding() Binding {
	b := Binding{
		Name: e.name, Address: e.addr, Audience: e.audience,
		Groups: slices.Clone(e.groups), Local: e.local != nil,
		Node: e.node, Hops: e.hops(),
	}
	if b.Groups == nil {
		b.Groups = []string{}
	}
	if l := e.via(); l != nil {
		info := l.Info()
		b.Link, b.ExchangeGroup = info.ID, info.ExchangeGroup
	}
	return b
}

// better is the order of rule 13: local first, then fewest hops, then
// the earliest seen.
func better(a, b *entry) bool {
	if (a.local != nil) != (b.local != nil) {
		return a.local != nil
	}
	if ha, hb := a.hops(), b.hops(); ha != hb {
		return ha < hb
	}
	return a.seq < b.seq
}

// procEntry is another process this one can reach.
type procEntry struct {
	id      ProcessID
	node    string
	sources []source
}

// index is the registry's state that other goroutines read.
type index struct {
	mu      sync.RWMutex
	gen     atomic.Uint64 // bumped by every change, so readers may cache routes
	byAddr  map[Address]*entry
	byName  map[string][]*entry // best first; read and changed under mu only
	byGroup map[string]map[Address]*entry
	locals  map[uint64]*Local // every local agent, hidden ones too
	procs   map[ProcessID]*procEntry
	learned map[ProcessID]Link // reverse-path routes learned from envelopes
}

func newIndex() *index {
	return &index{
		byAddr:  map[Address]*entry{},
		byName:  map[string][]*entry{},
		byGroup: map[string]map[Address]*entry{},
		locals:  map[uint64]*Local{},
		procs:   map[ProcessID]*procEntry{},
		learned: map[ProcessID]Link{},
	}
}

// wlock and wunlock bracket every change to the index.
func (ix *index) wlock() { ix.mu.Lock() }

func (ix *index) wunlock() {
	ix.gen.Add(1)
	ix.mu.Unlock()
}

// best returns the preferred binding of a name.
func (ix *index) best(name string) *entry {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if l := ix.byName[name]; len(l) > 0 {
		return l[0]
	}
	return nil
}

func (ix *index) lookup(a Address) *entry {
	ix.mu.RLock()
	e := ix.byAddr[a]
	ix.mu.RUnlock()
	return e
}

func (ix *index) local(id uint64) *Local {
	ix.mu.RLock()
	a := ix.locals[id]
	ix.mu.RUnlock()
	return a
}

// routeTo returns the link toward process p, or nil.
func (ix *index) routeTo(p ProcessID) Link {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if pe := ix.procs[p]; pe != nil && len(pe.sources) > 0 {
		return pe.sources[0].link
	}
	return ix.learned[p]
}

// insertName puts e into the list of its name, at its place in the
// order of rule 13 (a total order: seq tells any two entries apart). The
// list changes in place: every reader holds mu, and keeps no list after
// unlocking. A copy per change would cost a dump of N bindings of one
// name O(N²) bytes.
func (ix *index) insertName(e *entry) {
	l := ix.byName[e.name]
	i := sort.Search(len(l), func(i int) bool { return better(e, l[i]) })
	ix.byName[e.name] = slices.Insert(l, i, e)
}

// removeName takes e out of the list of its name.
func (ix *index) removeName(e *entry) {
	l := ix.byName[e.name]
	i := slices.Index(l, e)
	if i < 0 {
		return
	}
	if len(l) == 1 {
		delete(ix.byName, e.name)
		return
	}
	ix.byName[e.name] = slices.Delete(l, i, i+1)
}

// replaceName moves e to its place after its route changed.
func (ix *index) replaceName(e *entry) {
	ix.removeName(e)
	ix.insertName(e)
}

func sortSources(s []source) {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].hops != s[j].hops {
			return s[i].hops < s[j].hops
		}
		return s[i].seq < s[j].seq
	})
}

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

type watchKind uint8

const (
	watchName watchKind = iota + 1
	watchAddress
	watchGroup
	watchAll
)

// watcher is one registry watch; events go to pid as *WatchEvent.
type watcher struct {
	id    uint64
	pid   *actor.PID
	kind  watchKind
	name  string // name or group
	addr  Address
	ready chan struct{} // closed once the snapshot is queued; may be nil
}

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
	if ref.name == "" || r.ix.lookup(ref.addr) != nil {
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
func (r *registry) remove(e *entry, code Code) {
	e.withdrawn.Store(true)
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
			}
		}
	}
	r.ix.wunlock()

	for _, g := range b.Groups {
		r.notify(RegistryEvent{Kind: Left, Binding: b, Group: g}, r.all, r.byAddr[e.addr], r.byGroup[g])
	}
	r.notify(RegistryEvent{Kind: Withdrawn, Binding: b}, r.all, r.byName[e.name], r.byAddr[e.addr])
	r.feed(Change{Kind: Withdrawn, Binding: b, Origin: origin})
	r.rt.pending.failTarget(e.addr, RuntimeFailuref(code, "%s (%s) was withdrawn before the response arrived", e.name, e.addr))
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

// sortedEntries orders entries by when they were first seen, so
// snapshots read in a stable, meaningful order.
func sortedEntries(m map[Address]*entry) []*entry {
	l := make([]*entry, 0, len(m))
	for _, e := range m {
		l = append(l, e)
	}
	sort.Slice(l, func(i, j int) bool { return l[i].seq < l[j].seq })
	return l
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

// --- exchanges ---

// feed tells every attached exchange of a change.
func (r *registry) feed(c Change) {
	for _, pid := range r.exchanges {
		cc := c
		r.ctx.Send(pid, &cc)
	}
}

// dump sends an exchange everything it may announce on a new link: this
// process, the processes and the bindings it knows, with their origins.
func (r *registry) dump(pid *actor.PID, link Link) {
	d := &Dump{Link: link}
	d.Changes = append(d.Changes, Change{Kind: Available, Process: true,
		Binding: Binding{Address: Address{Process: r.rt.pid}, Node: r.rt.node, Local: true, Groups: []string{}}})
	r.ix.mu.RLock()
	procs := make([]*procEntry, 0, len(r.ix.procs))
	for _, pe := range r.ix.procs {
		procs = append(procs, pe)
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].sources[0].seq < procs[j].sources[0].seq })
	for _, pe := range procs {
		d.Changes = append(d.Changes, Change{Kind: Available, Process: true, Origin: pe.sources[0].link,
			Binding: Binding{Address: Address{Process: pe.id}, Node: pe.node, Hops: pe.sources[0].hops, Groups: []string{}}})
	}
	for _, e := range sortedEntries(r.ix.byAddr) {
		d.Changes = append(d.Changes, Change{Kind: Available, Binding: e.binding(), Origin: e.via()})
	}
	r.ix.mu.RUnlock()
	r.ctx.Send(pid, d)
}

// --- remote bindings ---

func (r *registry) imported(link Link, c Change) {
	if c.Process {
		r.importProcess(link, c)
		return
	}
	switch c.Kind {
	case Available:
		r.importBinding(link, c.Binding)
	case Withdrawn:
		r.dropSource(link, c.Binding.Address)
	case Joined, Left:
		if e := r.ix.lookup(c.Binding.Address); e != nil && e.local == nil && e.via() == link {
			r.group(c.Binding.Address, c.Group, c.Kind == Joined, link)
		}
	}
}

func (r *registry) importBinding(link Link, b Binding) {
	if b.Address.Process == r.rt.pid || b.Name == "" {
		return // our own services coming back round a loop
	}
	r.seq++
	src := source{link: link, hops: b.Hops + 1, seq: r.seq}
	if e := r.ix.lookup(b.Address); e != nil {
		r.ix.wlock()
		for _, s := range e.sources {
			if s.link == link {
				r.ix.wunlock()
				return // already known on this link (OSE S8)
			}
		}
		e.sources = append(e.sources, src)
		sortSources(e.sources)
		r.ix.replaceName(e)
		r.ix.wunlock()
		return
	}
	e := &entry{
		name: b.Name, audience: b.Audience, node: b.Node, addr: b.Address,
		seq: r.seq, groups: slices.Clone(b.Groups), sources: []source{src},
	}
	r.add(e, link)
}

// dropSource forgets that a binding is reachable through link, and
// withdraws it when no other link leads to it.
func (r *registry) dropSource(link Link, a Address) {
	e := r.ix.lookup(a)
	if e == nil || e.local != nil {
		return
	}
	r.ix.wlock()
	i := slices.IndexFunc(e.sources, func(s source) bool { return s.link == link })
	if i < 0 {
		r.ix.wunlock()
		return
	}
	if len(e.sources) > 1 {
		e.sources = slices.Delete(slices.Clone(e.sources), i, i+1)
		r.ix.replaceName(e)
		r.ix.wunlock()
		return
	}
	r.ix.wunlock()
	r.remove(e, CodeWithdrawn)
}

func (r *registry) importProcess(link Link, c Change) {
	p := c.Binding.Address.Process
	if p == r.rt.pid {
		return
	}
	r.ix.wlock()
	pe := r.ix.procs[p]
	switch c.Kind {
	case Available:
		r.seq++
		src := source{link: link, hops: c.Binding.Hops + 1, seq: r.seq}
		if pe == nil {
			pe = &procEntry{id: p, node: c.Binding.Node, sources: []source{src}}
			r.ix.procs[p] = pe
			r.ix.wunlock()
			r.feed(Change{Kind: Available, Process: true, Origin: link,
				Binding: Binding{Address: Address{Process: p}, Node: pe.node, Hops: src.hops, Groups: []string{}}})
			return
		}
		if !slices.ContainsFunc(pe.sources, func(s source) bool { return s.link == link }) {
			pe.sources = append(pe.sources, src)
			sortSources(pe.sources)
		}
		r.ix.wunlock()
	case Withdrawn:
		if pe == nil {
			r.ix.wunlock()
			return
		}
		pe.sources = slices.DeleteFunc(slices.Clone(pe.sources), func(s source) bool { return s.link == link })
		gone := len(pe.sources) == 0
		if gone {
			delete(r.ix.procs, p)
		}
		r.ix.wunlock()
		if gone {
			r.processGone(pe, link)
		}
	default:
		r.ix.wunlock()
	}
}

// processGone withdraws what is left of a process nobody can reach.
func (r *registry) processGone(pe *procEntry, origin Link) {
	r.ix.mu.RLock()
	var left []*entry
	for a, e := range r.ix.byAddr {
		if a.Process == pe.id {
			left = append(left, e)
		}
	}
	r.ix.mu.RUnlock()
	for _, e := range left {
		r.remove(e, CodeWithdrawn)
	}
	for a := range r.byAddr {
		if a.Process == pe.id {
			r.goneAddress(a)
		}
	}
	r.rt.pending.failProcess(pe.id, RuntimeFailuref(CodeWithdrawn, "process %s (%s) is no longer reachable", pe.id, pe.node))
	r.feed(Change{Kind: Withdrawn, Process: true, Origin: origin,
		Binding: Binding{Address: Address{Process: pe.id}, Node: pe.node, Groups: []string{}}})
}

// linkDown withdraws everything learned through a link (rule 9) after
// failing the requests that went through it (rule 17).
func (r *registry) linkDown(link Link) {
	info := link.Info()
	r.rt.pending.failLink(link, RuntimeFailuref(CodeLinkLost, "link %s to %s went down", info.ID, info.PeerNode))
	r.ix.wlock()
	for p, l := range r.ix.learned {
		if l == link {
			delete(r.ix.learned, p)
		}
	}
	var affected []*entry
	for _, e := range r.ix.byAddr {
		if e.local == nil && slices.ContainsFunc(e.sources, func(s source) bool { return s.link == link }) {
			affected = append(affected, e)
		}
	}
	var procs []ProcessID
	for p, pe := range r.ix.procs {
		if slices.ContainsFunc(pe.sources, func(s source) bool { return s.link == link }) {
			procs = append(procs, p)
		}
	}
	r.ix.wunlock()
	// Newest first, as OSE withdrew a link's table in reverse.
	sort.Slice(affected, func(i, j int) bool { return affected[i].seq > affected[j].seq })
	for _, e := range affected {
		r.dropSource(link, e.addr)
	}
	for _, p := range procs {
		r.importProcess(link, Change{Kind: Withdrawn, Process: true, Binding: Binding{Address: Address{Process: p}}})
	}
}
