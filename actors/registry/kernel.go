package registry

// The Kernel: its configuration, start and close, and what the node and
// the console read of it.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
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

// Config configures a Kernel. The zero value works.
type Config struct {
	// Node names this process in bindings and the console; the host name
	// when empty.
	Node string
	// Logger receives the runtime's logs. The library is quiet by
	// default: nil discards everything.
	Logger *slog.Logger
	// CallTimeout bounds calls whose context has no deadline, so no
	// request waits forever (rule 17).
	CallTimeout time.Duration
	// MaxPayload is the largest encoded argument list, result or report
	// value; larger ones fail with CodePayloadTooLarge.
	MaxPayload int
	// StopTimeout bounds how long Close and StopService wait for actors.
	StopTimeout time.Duration
	// ServiceQueueLimit bounds the bytes waiting in one service's
	// mailbox, so a slow service cannot make its process run out of
	// memory (rule 25). A report or one-way message that would go
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
	// peer must not grow them without bound (rule 36). A remote
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
	// and its state here (rule 36). At the bound, requests to the
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

// Kernel is one process's actor system, registry and services: what a
// program needs to run services and call them. Linking processes is the
// exchange's job (package actors), which plugs in through Import, Deliver
// and friends.
type Kernel struct {
	cfg  Config
	pid  ProcessID
	node string
	log  *slog.Logger
	sys  *actor.ActorSystem

	ix          *index
	pending     *pendingTable
	cancels     *cancelTable
	relink      relinkState
	procMethods processMethods
	registry    *actor.PID
	services    *actor.PID
	tree        *Tree
	dispatcher  actor.Dispatcher

	nextSeq   atomic.Uint64 // start order of local services
	nextConv  atomic.Uint64
	nextWatch atomic.Uint64
	started   time.Time
	closing   atomic.Bool
	draining  atomic.Bool // Drain was called: own services are withdrawn, not stopped
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

// New starts a process's kernel: its actor system, registry and
// services supervisor.
func New(cfg Config) (*Kernel, error) {
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
	rt := &Kernel{cfg: cfg, pid: pid, node: cfg.Node, log: log, ix: newIndex(), started: time.Now()}
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
	rt.cancels = newCancelTable()
	rt.HandleProcess(MethodPing, func() (any, error) { return nil, nil })
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
func resumeStrategy(rt *Kernel) actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(10, 10*time.Second, func(reason any) actor.Directive {
		rt.log.Error("actor failed; resuming it", "reason", reason)
		return actor.ResumeDirective
	})
}

// ProcessID returns this process's id.
func (rt *Kernel) ProcessID() ProcessID { return rt.pid }

// Node returns this process's node name.
func (rt *Kernel) Node() string { return rt.node }

// Logger returns the runtime's logger.
func (rt *Kernel) Logger() *slog.Logger { return rt.log }

// ActorSystem returns the protoactor system the runtime runs on, for
// actors of your own that live beside the services.
func (rt *Kernel) ActorSystem() *actor.ActorSystem { return rt.sys }

// Started returns when the runtime started.
func (rt *Kernel) Started() time.Time { return rt.started }

// MaxPayload returns the configured payload limit.
func (rt *Kernel) MaxPayload() int { return rt.cfg.MaxPayload }

// Tree returns the live actor tree the runtime keeps for the console.
func (rt *Kernel) Tree() *Tree { return rt.tree }

// StopService stops a local service: it is withdrawn everywhere and its
// waiting callers fail at once. It returns once the actor has stopped.
func (rt *Kernel) StopService(ctx context.Context, addr Address) error {
	ref := rt.ix.local(addr.ID)
	if addr.Process != rt.pid || ref == nil {
		return RuntimeFailuref(CodeNoSuchService, "no local service at %s", addr)
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
func (rt *Kernel) Close(ctx context.Context) error {
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
		rt.pending.close(RuntimeFailure(CodeShutdown, "the runtime is closing"))
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
func (rt *Kernel) Closed() bool { return rt.closing.Load() }

// servicesActor is the parent of top-level services.
type servicesActor struct{ rt *Kernel }

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

// detail is what the console shows of a service's actor: how far behind
// it is, what its limits turned away, and whether a handler has been
// running past Config.SlowHandler (busy_for_s, stuck).
func (ref *Local) detail() map[string]any {
	d := map[string]any{"address": ref.addr.String(), "queued_bytes": ref.mb.queuedBytes(),
		"dropped": ref.dropped.Load(), "refused": ref.refused.Load(), "delayed": ref.delayed.Load()}
	if n := ref.restarts.Load(); n > 0 {
		d["restarts"] = n
	}
	if m := ref.mb.method.Load(); m != nil {
		d["serving"] = *m
		if dl := ref.servingUntil.Load(); dl != 0 {
			// How long its caller still waits: a handler past it works
			// for nobody (its context says so).
			d["deadline_in_s"] = math.Round(float64(dl-time.Now().UnixNano())/1e6) / 1e3
		}
	}
	if busy, stuck := ref.mb.busy(); stuck {
		d["busy_for_s"] = busy.Seconds()
		d["stuck"] = true
	}
	return d
}

// Config returns the kernel's configuration, defaults filled in.
func (rt *Kernel) Config() Config { return rt.cfg }
