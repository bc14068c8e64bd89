package registry

// The index: the bindings, processes and routes the registry actor keeps,
// read by other goroutines under a read lock (calls, routing, lookups)
// and changed only by the registry actor.

import (
	"cmp"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// source is one link a remote binding or process was learned through.
type source struct {
	link Link
	hops int
	seq  uint64
	// avoid marks a link whose peer is draining: used only when no
	// other source is left (AvoidLink).
	avoid bool
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

// avoided reports whether e is reachable only through draining peers.
func (e *entry) avoided() bool { return e.local == nil && len(e.sources) > 0 && e.sources[0].avoid }

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
// the earliest seen; a binding reachable only through a draining peer
// comes after all others.
func better(a, b *entry) bool {
	if (a.local != nil) != (b.local != nil) {
		return a.local != nil
	}
	if aa, ba := a.avoided(), b.avoided(); aa != ba {
		return ba
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
	avoid   map[Link]bool      // links to draining peers (AvoidLink)
	// turns counts the calls to each name (and "\x00"+group) that had
	// several equally preferred bindings to pick from: the round-robin
	// of rule 13. An entry lives while its name or group has bindings.
	turns sync.Map // string → *atomic.Uint64
}

func newIndex() *index {
	return &index{
		byAddr:  map[Address]*entry{},
		byName:  map[string][]*entry{},
		byGroup: map[string]map[Address]*entry{},
		locals:  map[uint64]*Local{},
		procs:   map[ProcessID]*procEntry{},
		learned: map[ProcessID]Link{},
		avoid:   map[Link]bool{},
	}
}

// wlock and wunlock bracket every change to the index.
func (ix *index) wlock() { ix.mu.Lock() }

func (ix *index) wunlock() {
	ix.gen.Add(1)
	ix.mu.Unlock()
}

// pick returns the binding a call to a name goes to: of the equally
// preferred ones at the head of its list (rule 13), the next in turn.
// The binding at except (a retry's failed one) is passed over.
func (ix *index) pick(name string, except Address) *entry {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var top []*entry
	var buf [8]*entry
	top = buf[:0]
	for _, e := range ix.byName[name] {
		if e.addr == except {
			continue
		}
		if len(top) > 0 && !samePreference(top[0], e) {
			break // the list is in rule 13's order: the rest rank lower
		}
		top = append(top, e)
	}
	switch len(top) {
	case 0:
		return nil
	case 1:
		return top[0]
	}
	return top[ix.turn(name, len(top))]
}

// pickOfGroup is pick for the members of a service group.
func (ix *index) pickOfGroup(g string, except Address) *entry {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var top []*entry
	for _, e := range ix.byGroup[g] {
		switch {
		case e.addr == except:
		case len(top) == 0 || better(e, top[0]) && !samePreference(e, top[0]):
			top = append(top[:0], e)
		case samePreference(e, top[0]):
			top = append(top, e)
		}
	}
	switch len(top) {
	case 0:
		return nil
	case 1:
		return top[0]
	}
	slices.SortFunc(top, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
	return top[ix.turn("\x00"+g, len(top))]
}

// turn returns the next of n turns of key. Call with mu read-locked:
// the registry deletes a key's counter under the write lock once its
// name or group is gone, so none is created for what no longer exists.
func (ix *index) turn(key string, n int) int {
	c, ok := ix.turns.Load(key)
	if !ok {
		c, _ = ix.turns.LoadOrStore(key, new(atomic.Uint64))
	}
	return int((c.(*atomic.Uint64).Add(1) - 1) % uint64(n))
}

// samePreference reports whether rule 13 ranks a and b alike, seen by
// age apart: a call spreads over such bindings.
func samePreference(a, b *entry) bool {
	return (a.local != nil) == (b.local != nil) && a.avoided() == b.avoided() && a.hops() == b.hops()
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

// routeToExcept is routeTo passing over link avoid.
func (ix *index) routeToExcept(p ProcessID, avoid Link) Link {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if pe := ix.procs[p]; pe != nil {
		for _, s := range pe.sources {
			if s.link != avoid {
				return s.link
			}
		}
	}
	if l := ix.learned[p]; l != nil && l != avoid {
		return l
	}
	return nil
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
		ix.turns.Delete(e.name)
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
		if s[i].avoid != s[j].avoid {
			return s[j].avoid
		}
		if s[i].hops != s[j].hops {
			return s[i].hops < s[j].hops
		}
		return s[i].seq < s[j].seq
	})
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
