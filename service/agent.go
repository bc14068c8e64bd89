package service

// The Agent, a service's handle, and its actor: lifecycle, groups,
// child actors and the calls it makes.

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"

	"github.com/asynkron/protoactor-go/actor"
)

// Service is what a user writes: a value whose Setup exports methods,
// subscribes, watches and starts timers through the Agent it is given.
// Everything a service does later happens in handlers it registered
// there, one at a time, inside the service's actor: no locks needed.
type Service interface {
	// Setup runs once, inside the service's actor, before the service is
	// listed. An error stops the service and is returned by Start.
	Setup(a *Agent) error
}

// SetupFunc makes a plain function a Service.
type SetupFunc func(a *Agent) error

// Setup calls f.
func (f SetupFunc) Setup(a *Agent) error { return f(a) }

// Stopper is implemented by services that want to know they are
// stopping. Stopping runs inside the actor, after the service was
// withdrawn; it may not call other services.
type Stopper interface {
	Stopping(a *Agent)
}

// Agent is a running service: the handle its Setup and handlers use to
// export methods, call other services, publish and subscribe, watch the
// registry, set timers and stop. Its methods must be called only from
// inside the service's own handlers (including Setup, timers and
// callbacks), never from other goroutines.
type Agent struct {
	rt    *Runtime
	k     *registry.Kernel
	cfg   registry.Config
	ref   *registry.Local
	svc   Service
	ctx   actor.Context
	log   *slog.Logger
	ready chan error // answers Start; nil once used

	methods map[string]*method
	watches map[uint64]func(RegistryEvent)
	// watchTargets describes the user's own watches (not those the
	// runtime keeps for subscriptions), for the console.
	watchTargets map[uint64]string
	timers       map[uint64]*Timer
	delayed      map[uint64]delayedCaller // conversation → caller, for delayed replies
	delayedLog   rateLog                  // refusals over MaxDelayed, for the log
	req          Request                  // reused for every request: handlers run one at a time
	scratch      registry.Envelope        // reused for envelopes a link encodes at once
	inbound      registry.Envelope        // reused for envelopes decoded from a batch
	pub          publisherState
	sub          subscriberState
	msgs         handlers[messageHandler]
	inSetup      bool
	stopping     bool
	onPanic      PanicPolicy
	panicDue     bool        // a handler panicked: apply onPanic once it has returned
	restarts     []time.Time // within RestartWindow
}

// Name returns the service's name ("" for anonymous services).
func (a *Agent) Name() string { return a.ref.Name() }

// Address returns the service's unique address.
func (a *Agent) Address() Address { return a.ref.Addr() }

// Audience returns the service's audience.
func (a *Agent) Audience() string { return a.ref.Audience() }

// Runtime returns the runtime the service runs in.
func (a *Agent) Runtime() *Runtime { return a.rt }

// Logger returns a logger that names the service.
func (a *Agent) Logger() *slog.Logger { return a.log }

// agentActor is the actor of a service: its message loop, kept off the
// Agent so a service's handle shows only what a service uses.
type agentActor struct{ a *Agent }

// Receive is the service actor's message loop.
func (aa agentActor) Receive(ctx actor.Context) {
	a := aa.a
	a.ctx = ctx
	switch m := ctx.Message().(type) {
	case *registry.Envelope:
		a.handleEnvelope(m)
	case *registry.EncodedBatch:
		a.handleEncoded(m)
	case *registry.CallDone:
		a.finishCall(m)
	case *registry.WatchEvent:
		if fn := a.watches[m.ID]; fn != nil {
			a.guard("watch handler", func() { fn(m.Event) })
		}
	case *timerFired:
		a.fireTimer(m)
	case *doFunc:
		a.runDo(m)
	case *actor.Started:
		a.started()
	case *actor.Stopping:
		a.stop()
	case *actor.Stopped:
		// Nothing runs in the service now: give back what it held.
		a.releaseDelayed()
		a.releaseSubscribers()
		a.ref.Stopped()
	}
	if a.panicDue {
		a.afterPanic()
	}
}

func (a *Agent) started() {
	a.ref.Started(a.ctx.Self())
	a.k.Admit(a.ref)
	a.cfg = a.k.Config()
	a.log = a.k.Logger().With("service", registry.DisplayName(a.ref.Name()), "address", a.ref.Addr().String())
	a.methods = map[string]*method{}
	a.watches = map[uint64]func(RegistryEvent){}
	a.timers = map[uint64]*Timer{}
	a.delayed = map[uint64]delayedCaller{}
	err := a.setup(true)
	if err != nil {
		a.answerStart(err)
		a.ctx.Stop(a.ctx.Self())
		return
	}
	// The registry answers Start once the service is listed.
	done := a.ready
	a.ready = nil
	if done == nil {
		done = make(chan error, 1) // a child service: nobody waits
	}
	a.k.Register(a.ref, done)
}

// setup runs the service's Setup: the first time before the service is
// registered, again on a restart.
func (a *Agent) setup(first bool) (err error) {
	a.inSetup = first
	defer func() {
		a.inSetup = false
		if r := recover(); r != nil {
			a.log.Error("service setup panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("start service %q: setup panicked: %v", a.ref.Name(), r)
		}
	}()
	if err := a.svc.Setup(a); err != nil {
		return fmt.Errorf("start service %q: %w", a.ref.Name(), err)
	}
	for _, m := range a.methods {
		if m.err != nil {
			return fmt.Errorf("start service %q: %w", a.ref.Name(), m.err)
		}
	}
	return nil
}

func (a *Agent) answerStart(err error) {
	if a.ready != nil {
		a.ready <- err
		a.ready = nil
	}
}

// stop withdraws the service, tells its publishers it no longer
// listens, and drops its timers and waiting calls.
func (a *Agent) stop() {
	if a.stopping {
		return
	}
	a.stopping = true
	a.answerStart(registry.RuntimeFailure(CodeShutdown, "service stopped during setup"))
	done := make(chan struct{})
	a.k.Withdraw(a.ref, done)
	for _, t := range a.timers {
		t.t.Stop()
	}
	a.timers = nil
	a.k.DropCalls(a.ref)
	a.unsubscribeAll()
	for id := range a.watches {
		a.k.Unwatch(id)
	}
	a.watches = nil
	if s, ok := a.svc.(Stopper); ok {
		a.guard("Stopping", func() { s.Stopping(a) })
	}
	// Wait for the withdrawal, so StopService returning means callers
	// were failed; the registry never waits on services, so this is safe.
	select {
	case <-done:
	case <-time.After(a.cfg.StopTimeout):
		a.log.Warn("registry did not confirm withdrawal")
	}
}

// Stop stops the service after the current handler returns.
func (a *Agent) Stop() { a.ctx.Stop(a.ctx.Self()) }

// Announce makes a service started Hidden visible (rule 27).
func (a *Agent) Announce() {
	a.k.Announce(a.ref)
}

// JoinGroup joins a service group; joining twice does nothing.
func (a *Agent) JoinGroup(g string) {
	if g == "" {
		return
	}
	if a.inSetup { // not registered yet: the registration carries the groups
		a.ref.SetupGroup(g, true)
		return
	}
	a.k.SetGroup(a.ref, g, true)
}

// LeaveGroup leaves a service group; leaving one not joined does nothing.
func (a *Agent) LeaveGroup(g string) {
	if a.inSetup {
		a.ref.SetupGroup(g, false)
		return
	}
	a.k.SetGroup(a.ref, g, false)
}

// guard runs user code, turning a panic into a logged error so the
// service keeps running. It reports whether fn returned normally.
func (a *Agent) guard(what string, fn func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error(what+" panicked", "panic", r, "stack", string(debug.Stack()))
			a.handlerPanicked()
			ok = false
		}
	}()
	fn()
	return true
}

// handleEncoded handles a batch from a link. Every envelope is decoded
// into the same struct: nothing keeps an *registry.Envelope past its handling
// (responses are encoded by the link at once; a delayed request keeps
// only its caller's address).
func (a *Agent) handleEncoded(b *registry.EncodedBatch) {
	// Decode sets every field, so the envelope is cleared once, after the
	// batch (to let go of its memory), not after each envelope.
	defer func() { a.inbound = registry.Envelope{} }()
	rest := b.Data
	for first := true; len(rest) > 0; first = false {
		if !first {
			a.ref.BeginMessage() // for the slow-handler watch, each envelope is a message of its own
		}
		e := &a.inbound
		var err error
		if rest, err = b.Decode(rest, e); err != nil {
			a.log.Error("dropping undecodable batch", "error", err)
			return
		}
		e.Via = b.From
		if e.Kind == registry.KindRequest && e.From.Process == a.k.ProcessID() {
			c := *e // answered in-process: the pending call keeps the envelope's data only, but be safe
			e = &c
		}
		a.handleEnvelope(e)
		if a.panicDue {
			a.afterPanic() // the rest of the batch meets the policy's outcome
			if a.stopping {
				return
			}
		}
	}
}

func (a *Agent) handleEnvelope(e *registry.Envelope) {
	switch e.Kind {
	case registry.KindRequest:
		a.serve(e)
	case registry.KindReport:
		a.receiveReport(e)
	case registry.KindSubscribe:
		a.subscribed(e)
	case registry.KindUnsubscribe:
		a.unsubscribed(e)
	case registry.KindMessage:
		a.receiveMessage(e)
	}
}

// Spawn starts a plain protoactor actor as a child of this service; it
// shows in the console's tree and stops with the service. An empty name
// gets a generated one.
func (a *Agent) Spawn(name string, producer actor.Producer, opts ...actor.PropsOption) (*actor.PID, error) {
	tracked := a.k.Props(registry.KindActor, name, producer, nil).Configure(opts...)
	if name == "" {
		return a.ctx.Spawn(tracked), nil
	}
	return a.ctx.SpawnNamed(tracked, name)
}

// StartChild starts another service as a child of this one: it stops
// when this one stops. It returns before the child's Setup has run; a
// Setup error is logged.
func (a *Agent) StartChild(name string, svc Service, opts ...Option) (Address, error) {
	return a.rt.start(context.Background(), a.ctx, name, svc, opts)
}

// --- calls made by a service ---

// Call calls a method and waits for the answer. It blocks this service
// (nothing else of it runs meanwhile), so prefer Request in services
// that must stay responsive; a cycle of synchronous calls can only end
// by timing out.
func (a *Agent) Call(ctx context.Context, to Target, method string, args ...any) (Payload, error) {
	return a.k.CallFrom(ctx, a.ref.Addr(), to, method, args)
}

// Pending is a request this service sent and has not had answered.
type Pending struct {
	agent *Agent
	pc    *registry.PendingCall
}

// Request sends a request without waiting. Use Then to run a callback,
// inside this service, when the answer (or a failure) arrives. Its
// deadline is the runtime's CallTimeout, or, sent while a handler serves
// a request, that request's deadline when it comes sooner; it travels
// with the request (rule 17). Timeout changes how long this service
// waits, not the deadline sent.
func (a *Agent) Request(to Target, method string, args ...any) *Pending {
	timeout := a.cfg.CallTimeout
	if dl, ok := a.req.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	return &Pending{agent: a, pc: a.k.Request(a.ref, to, method, args, timeout)}
}

// Conversation returns the request's conversation id, for Cancel.
func (p *Pending) Conversation() uint64 { return p.pc.Conv() }

// Then sets the callback for the answer; it runs inside the service.
// err is a *Failure.
func (p *Pending) Then(fn func(res Payload, err error)) *Pending {
	p.pc.SetThen(fn)
	return p
}

// Timeout sets how long to wait for the answer before failing with
// CodeTimedOut.
func (p *Pending) Timeout(d time.Duration) *Pending {
	p.agent.k.SetTimeout(p.pc, d)
	return p
}

func (a *Agent) finishCall(m *registry.CallDone) {
	then, res, err := a.k.Finish(m)
	if then != nil {
		a.guard("reply callback", func() { then(res, err) })
	}
}

// Cancel ends one of this service's outstanding requests with the given
// failure (CodeCancelled when nil), delivered to its own callback; a late
// answer is dropped. It reports whether the request was still
// outstanding.
func (a *Agent) Cancel(conv uint64, f *Failure) bool {
	if f == nil {
		f = registry.RuntimeFailure(CodeCancelled, "cancelled by the caller")
	}
	return a.k.Cancel(a.ref, conv, f)
}

// CancelAll cancels every outstanding request of this service.
func (a *Agent) CancelAll(f *Failure) int {
	if f == nil {
		f = registry.RuntimeFailure(CodeCancelled, "cancelled by the caller")
	}
	return a.k.CancelAll(a.ref, f)
}
