package service

// Handing work to a service from outside it: code in main or an HTTP
// handler runs a function inside the service's actor, one at a time with
// its handlers.

import (
	"context"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// doFunc is a function to run inside a service (Runtime.Do).
type doFunc struct {
	fn   func(*Agent)
	done chan struct{}
}

// Do runs fn inside the service of this process at addr, after the
// handlers already queued, and returns once it has run: fn may use the
// Agent as a handler does (publish, call, set timers) without a lock and
// without a message type of its own. It fails when there is no such
// service, or ctx ends first (fn may then still run). Call it from
// outside the service: from its own handlers it would wait for itself.
func (rt *Runtime) Do(ctx context.Context, addr Address, fn func(a *Agent)) error {
	l := rt.k.LocalService(addr)
	if l == nil || l.PID() == nil {
		return registry.RuntimeFailuref(CodeNoSuchService, "no service of this process at %s", addr)
	}
	m := &doFunc{fn: fn, done: make(chan struct{})}
	rt.k.ActorSystem().Root.Send(l.PID(), m)
	select {
	case <-m.done:
		return nil
	case <-l.Done():
		return registry.RuntimeFailuref(CodeWithdrawn, "%s stopped before it ran the function", addr)
	case <-ctx.Done():
		return AsFailure(ctx.Err())
	}
}

func (a *Agent) runDo(m *doFunc) {
	defer close(m.done)
	if a.stopping {
		return
	}
	a.guard("function handed in with Do", func() { m.fn(a) })
}

// inPlaceMethod is answered by every service before its own methods: a
// subscriber calls it right after its subscription, and the answer,
// coming after the publisher took the subscription, says it is in place.
const inPlaceMethod = registry.MethodPing

// OnInPlace calls fn, inside the subscriber, once each publisher has
// taken the subscription: reports it publishes from then on are
// delivered (kept reports may still be arriving). A test can subscribe,
// wait for this, and then make the publisher publish.
func OnInPlace(fn func(PublisherEvent)) SubscribeOption {
	return func(s *Subscription) { s.onInPlace = fn }
}

// confirmInPlace asks the publisher at b whether the subscription is in
// place: its answer comes after the subscribe sent before it.
func (s *Subscription) confirmInPlace(b Binding) {
	a := s.agent
	a.Request(b.Address, inPlaceMethod).Then(func(_ Payload, err error) {
		if err != nil || s.cancelled {
			return
		}
		if _, still := s.publishers[b.Address]; !still {
			return
		}
		s.onInPlace(PublisherEvent{Publisher: b, Available: true})
	})
}
