package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Defaults for Config fields left zero.
const (
	DefaultCallTimeout = 30 * time.Second
	DefaultMaxPayload  = 16<<20 - 4<<10 // fits the wire's default 16 MiB frame with room for headers
	DefaultStopTimeout = 5 * time.Second
	// DefaultServiceQueueLimit is 64 MiB: room for a burst of large
	// payloads, a bound on a service that stopped keeping up.
	DefaultServiceQueueLimit = 64 << 20
	// DefaultSlowHandler is 10 s: far longer than a handler should take
	// (they run one at a time, so a slow one holds up its service), yet
	// soon enough that a wedged service is noticed before its callers'
	// 30 s CallTimeout all fire.
	DefaultSlowHandler = 10 * time.Second
	// DefaultMaxSubscriptionsPerProcess is 10,000 patterns: far more than
	// one program subscribes to, so only a runaway peer meets it.
	DefaultMaxSubscriptionsPerProcess = 10_000
	// DefaultMaxSubscriptions is 100,000 patterns: ten processes at their
	// bound; each costs a publisher a few hundred bytes and every publish
	// a pattern match.
	DefaultMaxSubscriptions = 100_000
	// DefaultMaxDelayed is 65,536 delayed requests per service: a long
	// poll per client of a busy server, with room to spare.
	DefaultMaxDelayed = 65_536
	// DefaultMaxDelayedTotal is 1,048,576 delayed requests in a process:
	// sixteen services at their bound, a few tens of MiB of state.
	DefaultMaxDelayedTotal = 1 << 20
)

// Config configures a Runtime. The zero value works.
type Config struct {
	// Node names this process in bindings and the console; the host name
	// when empty.
	Node string
	// Logger receives the runtime's logs. The library is quiet by
	// default: nil discards everything.
	Logger *slog.Logger
	// CallTimeout bounds calls whose context has no deadline, so no
	// request waits forever (SPEC rule 17).
	CallTimeout time.Duration
	// MaxPayload is the largest encoded argument list, result or report
	// value; larger ones fail with CodePayloadTooLarge.
	MaxPayload int
	// StopTimeout bounds how long Close and StopService wait for actors.
	StopTimeout time.Duration
	// ServiceQueueLimit bounds the bytes waiting in one service's
	// mailbox, so a slow service cannot make its process run out of
	// memory (SPEC rule 25). A report or one-way message that would go
	// over it makes room by dropping the oldest reports and messages
	// waiting, so a subscriber that catches up gets the latest state (it
	// is dropped itself only when that would not make room); drops are
	// counted (Stats.ServiceDrops, Stats.Services). A request over it is
	// refused with CodeOverloaded. Default DefaultServiceQueueLimit.
	ServiceQueueLimit int
	// SlowHandler is how long a handler may run before its service is
	// reported busy: a Warn log naming the service, the method and for
	// how long, once per episode, an Info log when it finishes, and
	// "stuck" in the console (Tree, Stats.Services). Handlers run one at
	// a time, so one blocked forever wedges its service while it stays
	// advertised; this makes that visible. Default DefaultSlowHandler; a
	// negative value turns the watch off.
	SlowHandler time.Duration
	// MaxSubscriptionsPerProcess bounds the subscription patterns this
	// process's publishers hold, all together, for one other process:
	// each is memory, a registry watch and work on every publish, and a
	// peer must not grow them without bound (SPEC rule 36). A remote
	// subscription past it is ignored, logged and counted
	// (Stats.SubscriptionsRefused); subscribers in this process are not
	// limited. Default DefaultMaxSubscriptionsPerProcess.
	MaxSubscriptionsPerProcess int
	// MaxSubscriptions bounds the patterns held for all other processes
	// together, so many peers cannot do what one may not. Default
	// DefaultMaxSubscriptions.
	MaxSubscriptions int
	// MaxDelayed bounds the requests one service has put off with
	// Request.Delay and not answered yet: each keeps its caller waiting
	// and its state here (SPEC rule 36). At the bound, requests to the
	// service fail with CodeOverloaded before their handler runs, until
	// it answers some. Default DefaultMaxDelayed.
	MaxDelayed int
	// MaxDelayedTotal bounds delayed requests of all services together:
	// at the bound, requests to services that hold delayed requests fail
	// the same way, while services holding none go on serving (each may
	// delay one, so the total may pass the bound by one per service).
	// Default DefaultMaxDelayedTotal.
	MaxDelayedTotal int
	// ProcessID fixes the process id; random when zero. For tests.
	ProcessID ProcessID
}

// Runtime is one process's actor system, registry and services: what a
// program needs to run services and call them. Linking processes is the
// exchange's job (package actors), which plugs in through Import, Deliver
// and friends.
type Runtime struct {
	cfg  Config
	pid  ProcessID
	node string
	log  *slog.Logger
	sys  *actor.ActorSystem

	ix         *index
	pending    *pendingTable
	registry   *actor.PID
	services   *actor.PID
	tree       *Tree
	dispatcher actor.Dispatcher

	nextLocal atomic.Uint64
	nextConv  atomic.Uint64
	nextWatch atomic.Uint64
	started   time.Time
	closing   atomic.Bool
	closeOnce sync.Once
	stats     runtimeStats
	watchdog  *watchdog // nil when SlowHandler is negative
	subs      subscriptionSlots
	delayed   atomic.Int64 // delayed requests of all services, not answered yet
}

// runtimeStats are counters the console and metrics read.
type runtimeStats struct {
	requests         atomic.Uint64 // requests sent
	failures         sync.Map      // Code → *atomic.Uint64, failures produced or received
	lateReplies      atomic.Uint64 // answers that arrived after the caller gave up
	undelivered      atomic.Uint64 // envelopes with nowhere to go
	droppedAtService atomic.Uint64 // reports and messages a slow service had no room for
	subsRefused      atomic.Uint64 // remote subscriptions over MaxSubscriptions(PerProcess)
	delayedRefused   atomic.Uint64 // requests refused over MaxDelayed(Total)
}

func (s *runtimeStats) countFailure(c Code) {
	v, ok := s.failures.Load(c)
	if !ok {
		v, _ = s.failures.LoadOrStore(c, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// NewRuntime starts an actor system with its registry.
func NewRuntime(cfg Config) (*Runtime, error) {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.ServiceQueueLimit <= 0 {
		cfg.ServiceQueueLimit = DefaultServiceQueueLimit
	}
	if cfg.SlowHandler == 0 {
		cfg.SlowHandler = DefaultSlowHandler
	}
	if cfg.MaxSubscriptionsPerProcess <= 0 {
		cfg.MaxSubscriptionsPerProcess = DefaultMaxSubscriptionsPerProcess
	}
	if cfg.MaxSubscriptions <= 0 {
		cfg.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if cfg.MaxDelayed <= 0 {
		cfg.MaxDelayed = DefaultMaxDelayed
	}
	if cfg.MaxDelayedTotal <= 0 {
		cfg.MaxDelayedTotal = DefaultMaxDelayedTotal
	}
	if cfg.Node == "" {
		cfg.Node, _ = os.Hostname()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	pid := cfg.ProcessID
	if pid == 0 {
		pid = NewProcessID()
	}
	rt := &Runtime{cfg: cfg, pid: pid, node: cfg.Node, log: log, ix: newIndex(), started: time.Now()}
	rt.subs.init(cfg.MaxSubscriptionsPerProcess, cfg.MaxSubscriptions)
	// protoactor logs through slog too; keep it at warnings so a busy
	// node is not drowned in dead-letter and lifecycle lines.
	rt.sys = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		if cfg.Logger == nil {
			return log
		}
		return slog.New(warnOnly{cfg.Logger.Handler()}).With("lib", "protoactor")
	}))
	rt.pending = newPendingTable(rt)
	// Conversation ids start at a random point so ids from two processes
	// do not collide in a service that keeps delayed replies by id.
	rt.nextConv.Store(rand.Uint64() >> 1)
	rt.tree = newTree()
	rt.dispatcher = newWorkerDispatcher(300)

	reg := newRegistry(rt)
	var err error
	rt.registry, err = rt.sys.Root.SpawnNamed(rt.props(KindRegistry, "", func() actor.Actor { return reg }), "registry")
	if err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	sup := &servicesActor{rt: rt}
	rt.services, err = rt.sys.Root.SpawnNamed(rt.props(KindSupervisor, "", func() actor.Actor { return sup }).
		Configure(actor.WithSupervisor(resumeStrategy(rt))), "services")
	if err != nil {
		return nil, fmt.Errorf("start services: %w", err)
	}
	if cfg.SlowHandler > 0 {
		rt.watchdog = startWatchdog(rt, cfg.SlowHandler)
	}
	return rt, nil
}

// warnOnly passes records at Warn and above.
type warnOnly struct{ slog.Handler }

func (w warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.Handler.Enabled(ctx, l)
}

// WithAttrs and WithGroup keep the filter on derived handlers.
func (w warnOnly) WithAttrs(as []slog.Attr) slog.Handler { return warnOnly{w.Handler.WithAttrs(as)} }

// WithGroup keeps the filter on derived handlers.
func (w warnOnly) WithGroup(name string) slog.Handler { return warnOnly{w.Handler.WithGroup(name)} }

// resumeStrategy keeps an actor's state when runtime code in it panics:
// a service's handlers are already guarded, so a panic here is a bug in
// the runtime, and restarting would lose the service's state and children.
func resumeStrategy(rt *Runtime) actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(10, 10*time.Second, func(reason any) actor.Directive {
		rt.log.Error("actor failed; resuming it", "reason", reason)
		return actor.ResumeDirective
	})
}

// ProcessID returns this process's id.
func (rt *Runtime) ProcessID() ProcessID { return rt.pid }

// Node returns this process's node name.
func (rt *Runtime) Node() string { return rt.node }

// Logger returns the runtime's logger.
func (rt *Runtime) Logger() *slog.Logger { return rt.log }

// ActorSystem returns the protoactor system the runtime runs on, for
// actors of your own that live beside the services.
func (rt *Runtime) ActorSystem() *actor.ActorSystem { return rt.sys }

// Started returns when the runtime started.
func (rt *Runtime) Started() time.Time { return rt.started }

// MaxPayload returns the configured payload limit.
func (rt *Runtime) MaxPayload() int { return rt.cfg.MaxPayload }

// Tree returns the live actor tree the runtime keeps for the console.
func (rt *Runtime) Tree() *Tree { return rt.tree }

// Option configures a service at Start.
type Option func(*agentRef)

// Audience sets who may see the service: "*" (the default) everywhere,
// "" this process only, or the name of an exchange group (SPEC §2).
func Audience(a string) Option { return func(r *agentRef) { r.audience = a } }

// Groups makes the service join service groups as it appears.
func Groups(groups ...string) Option {
	return func(r *agentRef) {
		for _, g := range groups {
			if g != "" {
				r.groups = append(r.groups, g)
			}
		}
	}
}

// Hidden starts the service unlisted: nobody can see or call it until it
// calls Agent.Announce (SPEC rule 27).
func Hidden() Option { return func(r *agentRef) { r.hidden.Store(true) } }

// Start runs svc as a service named name. It returns once the service's
// Setup has run and the service is in the registry, so a call made right
// after Start finds it. An empty name makes an anonymous service that is
// never listed (a pure caller or watcher).
func (rt *Runtime) Start(ctx context.Context, name string, svc Service, opts ...Option) (Address, error) {
	return rt.start(ctx, rt.services, nil, name, svc, opts)
}

// start spawns an agent under parent (the services supervisor, or, when
// parentAgent is set, inside that agent's own actor).
func (rt *Runtime) start(ctx context.Context, parent *actor.PID, parentCtx actor.Context, name string, svc Service, opts []Option) (Address, error) {
	if rt.closing.Load() {
		return Address{}, runtimeFailure(CodeShutdown, "runtime is closed")
	}
	if svc == nil {
		return Address{}, errors.New("start service: nil Service")
	}
	ref := &agentRef{audience: "*", name: name, done: make(chan struct{})}
	for _, o := range opts {
		o(ref)
	}
	ref.id = rt.nextLocal.Add(1)
	ref.addr = Address{Process: rt.pid, ID: ref.id}
	ref.mb = newServiceMailbox(rt, ref)
	ready := make(chan error, 1)
	a := &Agent{rt: rt, ref: ref, svc: svc, ready: ready}
	actorName := fmt.Sprintf("%s#%d", displayName(name), ref.id)
	props := rt.trackedProps(KindService, name, func() actor.Actor { return a }, ref.detail,
		func() actor.Mailbox { return ref.mb })
	// ref.pid is set by the agent itself as it starts (Agent.started),
	// before anyone else can see the ref; writing it here too would race.
	var pid *actor.PID
	var err error
	if parentCtx != nil {
		pid, err = parentCtx.SpawnNamed(props, actorName)
	} else {
		reply := make(chan spawnResult, 1)
		rt.sys.Root.Send(parent, &spawnChild{props: props, name: actorName, reply: reply})
		select {
		case r := <-reply:
			pid, err = r.pid, r.err
		case <-ctx.Done():
			return Address{}, AsFailure(ctx.Err())
		}
	}
	if err != nil {
		return Address{}, fmt.Errorf("start service %q: %w", name, err)
	}
	if parentCtx != nil {
		return ref.addr, nil // the parent cannot wait on its own child's setup
	}
	select {
	case err := <-ready:
		if err != nil {
			return Address{}, err
		}
		return ref.addr, nil
	case <-ctx.Done():
		rt.sys.Root.Stop(pid)
		return Address{}, AsFailure(ctx.Err())
	}
}

func displayName(name string) string {
	if name == "" {
		return "anonymous"
	}
	return name
}

// detail is what the console shows of a service's actor: how far behind
// it is, what its limits turned away, and whether a handler has been
// running past Config.SlowHandler (busy_for_s, stuck).
func (ref *agentRef) detail() map[string]any {
	d := map[string]any{"address": ref.addr.String(), "queued_bytes": ref.mb.queuedBytes(),
		"dropped": ref.dropped.Load(), "refused": ref.refused.Load(), "delayed": ref.delayed.Load()}
	if busy, stuck := ref.mb.busy(); stuck {
		d["busy_for_s"] = busy.Seconds()
		d["stuck"] = true
	}
	return d
}

// StopService stops a local service: it is withdrawn everywhere and its
// waiting callers fail at once. It returns once the actor has stopped.
func (rt *Runtime) StopService(ctx context.Context, addr Address) error {
	ref := rt.ix.local(addr.ID)
	if addr.Process != rt.pid || ref == nil {
		return runtimeFailuref(CodeNoSuchService, "no local service at %s", addr)
	}
	rt.sys.Root.Stop(ref.pid)
	select {
	case <-ref.done:
		return nil
	case <-ctx.Done():
		return AsFailure(ctx.Err())
	}
}

// Close stops every service, fails every waiting request and stops the
// actor system. It is safe to call more than once.
func (rt *Runtime) Close(ctx context.Context) error {
	var err error
	rt.closeOnce.Do(func() {
		rt.closing.Store(true)
		if _, has := ctx.Deadline(); !has {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, rt.cfg.StopTimeout)
			defer cancel()
		}
		// Fail waiting requests first: a service blocked in a call that
		// only Close would end (say, to a remote service) could not stop.
		rt.pending.close(runtimeFailure(CodeShutdown, "the runtime is closing"))
		f := rt.sys.Root.StopFuture(rt.services)
		done := make(chan error, 1)
		go func() { done <- f.Wait() }()
		select {
		case err = <-done:
		case <-ctx.Done():
			err = fmt.Errorf("close runtime: services did not stop: %w", ctx.Err())
		}
		rt.sys.Root.Stop(rt.registry)
		rt.sys.Shutdown()
		if rt.watchdog != nil {
			rt.watchdog.close()
		}
	})
	return err
}

// Closed reports whether Close was called.
func (rt *Runtime) Closed() bool { return rt.closing.Load() }

// servicesActor is the parent of top-level services.
type servicesActor struct{ rt *Runtime }

type spawnChild struct {
	props *actor.Props
	name  string
	reply chan spawnResult
}

type spawnResult struct {
	pid *actor.PID
	err error
}

func (s *servicesActor) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*spawnChild); ok {
		pid, err := ctx.SpawnNamed(m.props, m.name)
		m.reply <- spawnResult{pid, err}
	}
}

// --- routing ---

// route sends an envelope on its way: to a local agent, to the pending
// call it answers, or to the link toward its process. from is the link it
// arrived on (nil when sent here), so it never bounces straight back.
// A report's sender learns of congestion from the returned failure.
func (rt *Runtime) route(e *Envelope, from Link) *Failure {
	if e.To.Process == rt.pid {
		rt.deliverLocal(e)
		return nil
	}
	link := rt.ix.routeTo(e.To.Process)
	if link == nil || link == from {
		f := runtimeFailuref(CodeNoSuchService, "no route to process %s", e.To.Process)
		rt.undeliverable(e, f, false)
		return f
	}
	if err := link.Send(e); err != nil {
		f := AsFailure(err)
		if e.Kind == KindReport && f.Code == CodeOverloaded {
			return f // queued or dropped by the link, which counts it
		}
		rt.undeliverable(e, f, false)
		return f
	}
	return nil
}

func (rt *Runtime) deliverLocal(e *Envelope) {
	if e.Kind == KindResponse || e.Kind == KindFailure {
		rt.pending.complete(e)
		return
	}
	ref := rt.ix.local(e.To.ID)
	if ref == nil || (e.Kind == KindRequest && ref.hidden.Load()) {
		rt.undeliverable(e, runtimeFailuref(CodeNoSuchService, "no service at %s", e.To), false)
		return
	}
	if f := rt.post(ref, e); f != nil {
		rt.undeliverable(e, f, true)
	}
}

// post puts an envelope in a local service's mailbox, within its queue
// limit (SPEC rule 25; see serviceMailbox): a report or one-way message
// is queued, older ones dropped to make room, or dropped itself (all
// counted); a request over the limit is refused with CodeOverloaded.
// That bounds the memory a slow service can make its process hold,
// whoever sends to it.
func (rt *Runtime) post(ref *agentRef, e *Envelope) *Failure {
	class := classLimited
	switch e.Kind {
	case KindReport, KindMessage:
		class = classDroppable
	case KindSubscribe, KindUnsubscribe:
		class = classFree
	}
	if q, ok := ref.mb.offer(e, int64(e.Size()), class); !ok {
		ref.refused.Add(1)
		return runtimeFailuref(CodeOverloaded, "%s is %d bytes behind, over its queue limit of %d", displayName(ref.name), q, rt.cfg.ServiceQueueLimit)
	}
	return nil
}

// undeliverable answers a request that cannot go on with a failure, and
// counts anything else as dropped. notRun marks the failure as one the
// caller may retry elsewhere: the request provably reached no handler.
func (rt *Runtime) undeliverable(e *Envelope, f *Failure, notRun bool) {
	rt.stats.countFailure(f.Code)
	if e.Kind != KindRequest {
		rt.stats.undelivered.Add(1)
		return
	}
	rt.route(&Envelope{Kind: KindFailure, To: e.From, From: e.To, Conv: e.Conv, ContentType: ContentCBOR, Data: encodeFailure(f), NotRun: notRun}, nil)
}

// --- calls from outside any service ---

// Call calls a method of a service from any goroutine and waits for the
// answer, ctx's deadline or the configured CallTimeout, whichever comes
// first. The error is a *Failure.
func (rt *Runtime) Call(ctx context.Context, to Target, method string, args ...any) (Payload, error) {
	return rt.call(ctx, Address{Process: rt.pid}, to, method, args)
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
		res, err = c.call(ctx, Address{Process: c.pid}, to, method, args)
	case *Agent:
		res, err = c.rt.call(ctx, c.ref.addr, to, method, args)
	default:
		res, err = c.Call(ctx, to, method, args...)
	}
	if err != nil {
		return v, err
	}
	if err := res.Decode(&v); err != nil {
		return v, runtimeFailure(CodeResponseDecoding, err.Error())
	}
	return v, nil
}

// resolved is where a request goes.
type resolved struct {
	addr  Address
	entry *entry    // the binding, when the target is listed
	local *agentRef // set for local targets
	via   Link      // set for remote targets
}

// resolve finds the service a target names (rule 13 for names).
func (rt *Runtime) resolve(to Target) (resolved, *Failure) {
	switch t := to.(type) {
	case Name:
		e := rt.ix.best(string(t))
		if e == nil {
			return resolved{}, runtimeFailuref(CodeNoSuchService, "no service named %q", string(t))
		}
		return rt.resolveEntry(e)
	case Address:
		if e := rt.ix.lookup(t); e != nil {
			return rt.resolveEntry(e)
		}
		if t.Process == rt.pid {
			if ref := rt.ix.local(t.ID); ref != nil && !ref.hidden.Load() {
				return resolved{addr: t, local: ref}, nil
			}
			return resolved{}, runtimeFailuref(CodeNoSuchService, "no service at %s", t)
		}
		if l := rt.ix.routeTo(t.Process); l != nil {
			return resolved{addr: t, via: l}, nil
		}
		return resolved{}, runtimeFailuref(CodeNoSuchService, "no route to %s", t)
	case nil:
		return resolved{}, runtimeFailure(CodeNoSuchService, "no target")
	}
	return resolved{}, runtimeFailuref(CodeNoSuchService, "cannot call %s", to)
}

func (rt *Runtime) resolveEntry(e *entry) (resolved, *Failure) {
	if e.local != nil {
		return resolved{addr: e.addr, entry: e, local: e.local}, nil
	}
	rt.ix.mu.RLock()
	via := e.via()
	rt.ix.mu.RUnlock()
	if via == nil {
		return resolved{}, runtimeFailuref(CodeNoSuchService, "no route to %s", e.addr)
	}
	return resolved{addr: e.addr, entry: e, via: via}, nil
}

// send puts a request on its way and registers pc under a new
// conversation id. On failure pc is not registered.
func (rt *Runtime) send(pc *pendingCall, from Address, r resolved, method string, p Payload) *Failure {
	if len(p.Data) > rt.cfg.MaxPayload {
		return runtimeFailuref(CodePayloadTooLarge, "arguments are %d bytes, the limit is %d", len(p.Data), rt.cfg.MaxPayload)
	}
	pc.conv = rt.nextConv.Add(1)
	pc.target, pc.via = r.addr, r.via
	if f := rt.pending.add(pc); f != nil {
		return f
	}
	// Checked after registering: either we see the withdrawal here or the
	// registry's failTarget sees our call (both under the table's lock).
	if r.entry != nil && r.entry.withdrawn.Load() {
		rt.pending.take(pc.conv)
		return runtimeFailuref(CodeWithdrawn, "%s was withdrawn", r.addr)
	}
	// The same for an unlisted local service: the registry drops it from
	// the locals before failing the calls waiting on it.
	if r.entry == nil && r.local != nil && rt.ix.local(r.addr.ID) != r.local {
		rt.pending.take(pc.conv)
		return runtimeFailuref(CodeWithdrawn, "%s has stopped", r.addr)
	}
	rt.stats.requests.Add(1)
	e := &Envelope{Kind: KindRequest, To: r.addr, From: from, Conv: pc.conv, Subject: method, ContentType: p.ContentType, Data: p.Data}
	if r.local != nil {
		if f := rt.post(r.local, e); f != nil {
			rt.pending.take(pc.conv)
			return f
		}
		return nil
	}
	if err := r.via.Send(e); err != nil {
		rt.pending.take(pc.conv)
		return AsFailure(err)
	}
	return nil
}

func (rt *Runtime) call(ctx context.Context, from Address, to Target, method string, args []any) (Payload, error) {
	if rt.closing.Load() {
		rt.stats.countFailure(CodeShutdown)
		return Payload{}, runtimeFailure(CodeShutdown, "runtime is closed")
	}
	r, f := rt.resolve(to)
	if f != nil {
		rt.stats.countFailure(f.Code)
		return Payload{}, f
	}
	p, err := encodeArgs(args)
	if err != nil {
		return Payload{}, runtimeFailure(CodeBadArguments, err.Error())
	}
	pc := syncCallPool.Get().(*pendingCall)
	if f := rt.send(pc, from, r, method, p); f != nil {
		syncCallPool.Put(pc)
		rt.stats.countFailure(f.Code)
		return Payload{}, f
	}
	var expired <-chan time.Time
	if _, has := ctx.Deadline(); !has {
		pc.timer.Reset(rt.cfg.CallTimeout)
		expired = pc.timer.C
	}
	var res Payload
	select {
	case <-pc.done:
		res, f = pc.res, pc.fail
	case <-ctx.Done():
		f = rt.abandon(pc, AsFailure(ctx.Err()))
		res = pc.res
	case <-expired:
		f = rt.abandon(pc, runtimeFailuref(CodeTimedOut, "no answer within %v", rt.cfg.CallTimeout))
		res = pc.res
	}
	if expired != nil {
		pc.timer.Stop()
	}
	pc.res, pc.fail, pc.via = Payload{}, nil, nil
	syncCallPool.Put(pc)
	if f != nil {
		rt.stats.countFailure(f.Code)
		return Payload{}, f
	}
	return res, nil
}

// abandon gives up waiting. When the answer is being delivered at this
// very moment, it waits for it, so the pooled call is never reused while
// someone still writes to it.
func (rt *Runtime) abandon(pc *pendingCall, f *Failure) *Failure {
	if rt.pending.take(pc.conv) != nil {
		return f
	}
	<-pc.done
	return pc.fail
}
