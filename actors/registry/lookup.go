package registry

// Lookups read the index the registry keeps, under its read lock.

// Lookup returns the visible bindings of a name, the preferred first.
func (rt *Kernel) Lookup(name string) []Binding {
	rt.ix.mu.RLock()
	defer rt.ix.mu.RUnlock()
	l := rt.ix.byName[name]
	out := make([]Binding, len(l))
	for i, e := range l {
		out[i] = e.binding()
	}
	return out
}

// LookupAddress returns the binding at an address, if visible.
func (rt *Kernel) LookupAddress(addr Address) (Binding, bool) {
	rt.ix.mu.RLock()
	defer rt.ix.mu.RUnlock()
	if e := rt.ix.byAddr[addr]; e != nil {
		return e.binding(), true
	}
	return Binding{}, false
}

// LookupGroup returns the members of a service group, oldest first.
func (rt *Kernel) LookupGroup(g string) []Binding {
	rt.ix.mu.RLock()
	defer rt.ix.mu.RUnlock()
	var out []Binding
	for _, e := range sortedEntries(rt.ix.byGroup[g]) {
		out = append(out, e.binding())
	}
	return out
}

// Services returns every visible binding, oldest first.
func (rt *Kernel) Services() []Binding {
	rt.ix.mu.RLock()
	defer rt.ix.mu.RUnlock()
	out := make([]Binding, 0, len(rt.ix.byAddr))
	for _, e := range sortedEntries(rt.ix.byAddr) {
		out = append(out, e.binding())
	}
	return out
}

// Processes returns the other processes this one can reach.
func (rt *Kernel) Processes() []ProcessInfo {
	rt.ix.mu.RLock()
	defer rt.ix.mu.RUnlock()
	out := make([]ProcessInfo, 0, len(rt.ix.procs))
	for _, pe := range rt.ix.procs {
		out = append(out, ProcessInfo{ID: pe.id, Node: pe.node, Hops: pe.sources[0].hops, Link: pe.sources[0].link.Info().ID})
	}
	return out
}

// ProcessInfo describes a reachable process.
type ProcessInfo struct {
	ID   ProcessID `json:"process"`
	Node string    `json:"node"`
	Hops int       `json:"hops"`
	Link string    `json:"link"`
}
