package service

import (
	"context"

	"github.com/asynkron/protoactor-go/actor"
)

// Watch is a registry watch; Cancel ends it.
type Watch struct {
	agent *Agent
	id    uint64
}

// Watch tells fn of every binding matching t — a Name, an Address, a
// Group or AllServices — first those that exist now, then each change in
// the order it happened (SPEC rule 12). Name watches get Available and
// Withdrawn; Group watches get Joined and Left; Address and AllServices
// watches get all four. fn runs inside this service.
func (a *Agent) Watch(t Target, fn func(RegistryEvent)) *Watch {
	w := a.watch(t, fn)
	if a.watchTargets == nil {
		a.watchTargets = map[uint64]string{}
	}
	a.watchTargets[w.id] = t.String()
	a.publishInterests()
	return w
}

// watch starts a registry watch without listing it as the user's own.
func (a *Agent) watch(t Target, fn func(RegistryEvent)) *Watch {
	id := a.rt.nextWatch.Add(1)
	a.watches[id] = fn
	a.rt.sys.Root.Send(a.rt.registry, &regWatch{w: newWatcher(id, a.ref.pid, t)})
	return &Watch{agent: a, id: id}
}

func newWatcher(id uint64, pid *actor.PID, t Target) *watcher {
	w := &watcher{id: id, pid: pid}
	switch t := t.(type) {
	case Name:
		w.kind, w.name = watchName, string(t)
	case Address:
		w.kind, w.addr = watchAddress, t
	case Group:
		w.kind, w.name = watchGroup, string(t)
	default:
		w.kind = watchAll
	}
	return w
}

// Cancel ends the watch; no event reaches the handler afterwards.
func (w *Watch) Cancel() {
	if w == nil || w.agent.watches == nil {
		return
	}
	if _, ok := w.agent.watches[w.id]; ok {
		delete(w.agent.watches, w.id)
		w.agent.rt.sys.Root.Send(w.agent.rt.registry, &regUnwatch{id: w.id})
		if _, own := w.agent.watchTargets[w.id]; own {
			delete(w.agent.watchTargets, w.id)
			w.agent.publishInterests()
		}
	}
}

// Lookup returns the visible bindings of a name, the preferred first
// (SPEC rule 13).
func (a *Agent) Lookup(name string) []Binding { return a.rt.Lookup(name) }

// Lookup returns the visible bindings of a name, the preferred first.
func (rt *Runtime) Lookup(name string) []Binding {
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
func (rt *Runtime) LookupAddress(addr Address) (Binding, bool) {
	rt.ix.mu.RLock()
	defer rt.ix.mu.RUnlock()
	if e := rt.ix.byAddr[addr]; e != nil {
		return e.binding(), true
	}
	return Binding{}, false
}

// LookupGroup returns the members of a service group, oldest first.
func (rt *Runtime) LookupGroup(g string) []Binding {
	rt.ix.mu.RLock()
	defer rt.ix.mu.RUnlock()
	var out []Binding
	for _, e := range sortedEntries(rt.ix.byGroup[g]) {
		out = append(out, e.binding())
	}
	return out
}

// Services returns every visible binding, oldest first.
func (rt *Runtime) Services() []Binding {
	rt.ix.mu.RLock()
	defer rt.ix.mu.RUnlock()
	out := make([]Binding, 0, len(rt.ix.byAddr))
	for _, e := range sortedEntries(rt.ix.byAddr) {
		out = append(out, e.binding())
	}
	return out
}

// Processes returns the other processes this one can reach.
func (rt *Runtime) Processes() []ProcessInfo {
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

// Watch runs fn, on a goroutine of its own, for every registry event
// matching t (see Agent.Watch) until the returned stop function is
// called. It returns once the snapshot of existing bindings is queued.
func (rt *Runtime) Watch(ctx context.Context, t Target, fn func(RegistryEvent)) (stop func(), err error) {
	addr, err := rt.Start(ctx, "", SetupFunc(func(a *Agent) error {
		a.Watch(t, fn)
		return nil
	}), Hidden())
	if err != nil {
		return nil, err
	}
	return func() { _ = rt.StopService(context.Background(), addr) }, nil
}
