package service

// Registry watches (rule 12) and lookups.

import (
	"context"
)

// Watch is a registry watch; Cancel ends it.
type Watch struct {
	agent *Agent
	id    uint64
	stop  func() // for Runtime.Watch: stops the service that watches
}

// Watch tells fn of every binding matching t — a Name, an Address, a
// Group or AllServices — first those that exist now, then each change in
// the order it happened (rule 12). Name watches get Available and
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
	id := a.k.NextID()
	a.watches[id] = fn
	a.k.Watch(id, a.ref.PID(), t)
	return &Watch{agent: a, id: id}
}

// Cancel ends the watch; no event reaches the handler afterwards.
func (w *Watch) Cancel() {
	if w != nil && w.stop != nil {
		w.stop()
		w.stop = nil
		return
	}
	if w == nil || w.agent == nil || w.agent.watches == nil {
		return
	}
	if _, ok := w.agent.watches[w.id]; ok {
		delete(w.agent.watches, w.id)
		w.agent.k.Unwatch(w.id)
		if _, own := w.agent.watchTargets[w.id]; own {
			delete(w.agent.watchTargets, w.id)
			w.agent.publishInterests()
		}
	}
}

// Lookup returns the visible bindings of a name, the preferred first
// (rule 13).
func (a *Agent) Lookup(name string) []Binding { return a.rt.Lookup(name) }

// Watch runs fn, inside a service of its own, for every registry event
// matching t (see Agent.Watch) until the watch is cancelled. It returns
// once the snapshot of existing bindings is queued.
func (rt *Runtime) Watch(ctx context.Context, t Target, fn func(RegistryEvent)) (*Watch, error) {
	addr, err := rt.Start(ctx, "", SetupFunc(func(a *Agent) error {
		a.Watch(t, fn)
		return nil
	}), Hidden())
	if err != nil {
		return nil, err
	}
	return &Watch{stop: func() { _ = rt.StopService(context.Background(), addr) }}, nil
}
