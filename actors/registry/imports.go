package registry

// What links bring in: bindings and processes announced by peers, and
// what goes when a link does (rules 8, 9).

import (
	"slices"
	"sort"

	"github.com/asynkron/protoactor-go/actor"
)

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

func (r *registry) imported(link Link, c Change) {
	if c.Process {
		r.importProcess(link, c)
		return
	}
	switch c.Kind {
	case Available:
		r.importBinding(link, c.Binding)
	case Withdrawn:
		r.dropSource(link, c.Binding.Address, c.Draining)
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
		src.avoid = r.ix.avoid[link]
		for _, s := range e.sources {
			if s.link == link {
				r.ix.wunlock()
				return // already known on this link (OSE S8)
			}
		}
		e.sources = append(e.sources, src)
		sortSources(e.sources)
		r.ix.replaceName(e)
		b := e.binding()
		r.ix.wunlock()
		// Watchers saw it already; the exchanges decide whether the new
		// path is news to their peers. A client moving from a draining
		// server to this one is: the other servers knew it only through
		// the draining one (rules 7, 11). Peers that knew it over the
		// same link ignore the repeat.
		r.feed(Change{Kind: Available, Binding: b, Origin: link})
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
func (r *registry) dropSource(link Link, a Address, draining bool) {
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
	r.withdraw(e, CodeWithdrawn, draining)
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
		src := source{link: link, hops: c.Binding.Hops + 1, seq: r.seq, avoid: r.ix.avoid[link]}
		if pe == nil {
			pe = &procEntry{id: p, node: c.Binding.Node, sources: []source{src}}
			r.ix.procs[p] = pe
			r.ix.wunlock()
			r.feed(Change{Kind: Available, Process: true, Origin: link,
				Binding: Binding{Address: Address{Process: p}, Node: pe.node, Hops: src.hops, Groups: []string{}}})
			return
		}
		if slices.ContainsFunc(pe.sources, func(s source) bool { return s.link == link }) {
			r.ix.wunlock()
			return
		}
		pe.sources = append(pe.sources, src)
		sortSources(pe.sources)
		r.ix.wunlock()
		// A new path, as for a binding (importBinding).
		r.feed(Change{Kind: Available, Process: true, Origin: link,
			Binding: Binding{Address: Address{Process: p}, Node: pe.node, Hops: src.hops, Groups: []string{}}})
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
	delete(r.ix.avoid, link)
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
		r.dropSource(link, e.addr, false)
	}
	for _, p := range procs {
		r.importProcess(link, Change{Kind: Withdrawn, Process: true, Binding: Binding{Address: Address{Process: p}}})
	}
}

// avoidLink makes every binding and process reachable through link
// prefer its other sources: the peer is draining and will go.
func (r *registry) avoidLink(link Link) {
	r.ix.wlock()
	defer r.ix.wunlock()
	r.ix.avoid[link] = true
	mark := func(s []source) bool {
		hit := false
		for i := range s {
			if s[i].link == link {
				s[i].avoid, hit = true, true
			}
		}
		if hit {
			sortSources(s)
		}
		return hit
	}
	for _, e := range r.ix.byAddr {
		if e.local == nil && mark(e.sources) {
			r.ix.replaceName(e)
		}
	}
	for _, pe := range r.ix.procs {
		mark(pe.sources)
	}
}
