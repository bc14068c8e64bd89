package service

// Runtime: starting, calling and stopping services from a program.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/netsvc-go/netsvc/actors/registry"
)

// Runtime is one process's services: start them, call them, watch the
// registry, stop. A node (package actors/node) runs one and links it to
// other processes; on its own it runs services in-process.
type Runtime struct {
	k *registry.Kernel
}

// NewRuntime starts a process's runtime: its actor system and registry.
func NewRuntime(cfg Config) (*Runtime, error) {
	k, err := registry.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Runtime{k: k}, nil
}

// Kernel returns the kernel under the runtime: what a node links to
// other processes and its console shows. Services do not need it.
func (rt *Runtime) Kernel() *registry.Kernel { return rt.k }

// ProcessID returns this process's id.
func (rt *Runtime) ProcessID() ProcessID { return rt.k.ProcessID() }

// Node returns this process's node name.
func (rt *Runtime) Node() string { return rt.k.Node() }

// Logger returns the runtime's logger.
func (rt *Runtime) Logger() *slog.Logger { return rt.k.Logger() }

// Option configures a service at Start.
type Option func(*startOptions)

type startOptions struct {
	audience string
	groups   []string
	hidden   bool
	onPanic  PanicPolicy
}

// Audience sets where the service is visible: "*" (the default)
// everywhere, "" in this process only, or only through endpoints of the
// exchange group of that name.
func Audience(a string) Option { return func(o *startOptions) { o.audience = a } }

// Groups makes the service join service groups as it appears.
func Groups(groups ...string) Option {
	return func(o *startOptions) {
		for _, g := range groups {
			if g != "" {
				o.groups = append(o.groups, g)
			}
		}
	}
}

// Hidden starts the service unlisted: nobody can see or call it until it
// calls Agent.Announce.
func Hidden() Option { return func(o *startOptions) { o.hidden = true } }

// Start runs svc as a service named name. It returns once the service's
// Setup has run and the service is in the registry, so a call made right
// after Start finds it. An empty name makes an anonymous service that is
// never listed (a pure caller or watcher).
func (rt *Runtime) Start(ctx context.Context, name string, svc Service, opts ...Option) (Address, error) {
	return rt.start(ctx, nil, name, svc, opts)
}

// start starts an agent: under the services supervisor, or, with
// parent, as a child of that service's actor.
func (rt *Runtime) start(ctx context.Context, parent actor.Context, name string, svc Service, opts []Option) (Address, error) {
	if svc == nil {
		return Address{}, errors.New("start service: nil Service")
	}
	o := startOptions{audience: "*"}
	for _, opt := range opts {
		opt(&o)
	}
	l := rt.k.NewLocal(name, o.audience, o.groups, o.hidden)
	ready := make(chan error, 1)
	a := &Agent{rt: rt, k: rt.k, ref: l, svc: svc, ready: ready, onPanic: o.onPanic}
	pid, err := rt.k.SpawnService(ctx, parent, l, func() actor.Actor { return agentActor{a} })
	if err != nil {
		return Address{}, fmt.Errorf("start service %q: %w", name, err)
	}
	if parent != nil {
		return l.Addr(), nil // the parent cannot wait on its own child's setup
	}
	select {
	case err := <-ready:
		if err != nil {
			return Address{}, err
		}
		return l.Addr(), nil
	case <-ctx.Done():
		rt.k.ActorSystem().Root.Stop(pid)
		return Address{}, AsFailure(ctx.Err())
	}
}

// StopService stops a local service: it is withdrawn everywhere and its
// waiting callers fail at once. It returns once the actor has stopped.
func (rt *Runtime) StopService(ctx context.Context, addr Address) error {
	return rt.k.StopService(ctx, addr)
}

// Close stops every service, fails every waiting request and stops the
// actor system. It is safe to call more than once.
func (rt *Runtime) Close(ctx context.Context) error { return rt.k.Close(ctx) }

// Call calls a method of a service from any goroutine and waits for the
// answer, ctx's deadline or the configured CallTimeout, whichever comes
// first. The error is a *Failure.
func (rt *Runtime) Call(ctx context.Context, to Target, method string, args ...any) (Payload, error) {
	return rt.k.CallFrom(ctx, Address{Process: rt.k.ProcessID()}, to, method, args)
}

// Caller is what can make synchronous calls: a *Runtime from any
// goroutine, an *Agent from inside its handlers.
type Caller interface {
	Call(ctx context.Context, to Target, method string, args ...any) (Payload, error)
}

// CallFor calls and decodes the result as a T.
func CallFor[T any](ctx context.Context, c Caller, to Target, method string, args ...any) (T, error) {
	var v T
	var res Payload
	var err error
	// Concrete calls let the compiler keep args on the caller's stack.
	switch c := c.(type) {
	case *Runtime:
		res, err = c.k.CallFrom(ctx, Address{Process: c.k.ProcessID()}, to, method, args)
	case *Agent:
		res, err = c.k.CallFrom(ctx, c.ref.Addr(), to, method, args)
	default:
		res, err = c.Call(ctx, to, method, args...)
	}
	if err != nil {
		return v, err
	}
	if err := res.Decode(&v); err != nil {
		return v, registry.RuntimeFailure(CodeResponseDecoding, err.Error())
	}
	return v, nil
}

// Lookup returns the visible services of a name, the preferred first.
func (rt *Runtime) Lookup(name string) []Binding { return rt.k.Lookup(name) }

// LookupAddress returns the service at an address, if visible.
func (rt *Runtime) LookupAddress(addr Address) (Binding, bool) { return rt.k.LookupAddress(addr) }

// LookupGroup returns the members of a service group, oldest first.
func (rt *Runtime) LookupGroup(g string) []Binding { return rt.k.LookupGroup(g) }

// Services returns every visible service, oldest first.
func (rt *Runtime) Services() []Binding { return rt.k.Services() }
