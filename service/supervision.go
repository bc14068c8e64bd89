package service

// What a panic in a handler does: resume, restart or stop (supervision).

import "time"

// PanicPolicy is what a panic in one of a service's handlers (a method,
// a timer, a report, watch, message or reply callback) does. Whatever
// the policy, the panic is logged with its stack and the request whose
// handler panicked fails with CodeHandlerError. A panic in Setup is
// different: it fails Start.
type PanicPolicy int

const (
	// ResumeOnPanic, the default, goes on with the service's state as the
	// panic left it, as a Go HTTP server goes on after a handler panics:
	// a panic is most often one request's bad input, and the service
	// keeps serving every other caller. Choose RestartOnPanic when a
	// handler panicking halfway through an update would leave state that
	// must not be served.
	ResumeOnPanic PanicPolicy = iota
	// RestartOnPanic gives the service a fresh start, as an Erlang or
	// Akka supervisor restarts a child: its timers, subscriptions,
	// watches, message handlers, outstanding calls, kept reports and
	// exported methods are dropped, its delayed requests fail with
	// CodeHandlerError, its child services stop, and Setup runs again to
	// make them anew. It keeps
	// its address, its mailbox (requests waiting there are served by the
	// new state), its groups and its subscribers, and is never
	// withdrawn: callers see no gap. State Setup creates is fresh; state
	// held in the Service value itself, Setup must reset. A panic after
	// 3 restarts within 5 s stops the service instead, as a supervisor
	// gives up on a child that keeps crashing.
	RestartOnPanic
	// StopOnPanic stops the service: it is withdrawn everywhere and the
	// requests waiting on it fail.
	StopOnPanic
)

// The restart intensity of RestartOnPanic: at most maxRestarts within
// restartWindow.
const (
	maxRestarts   = 3
	restartWindow = 5 * time.Second
)

// OnPanic sets what a panic in one of the service's handlers does.
func OnPanic(p PanicPolicy) Option { return func(o *startOptions) { o.onPanic = p } }

// handlerPanicked records a panic in user code; the policy is applied
// once the handler has returned (afterPanic), never while a list of
// callbacks is being walked.
func (a *Agent) handlerPanicked() {
	if a.onPanic != ResumeOnPanic {
		a.panicDue = true
	}
}

// afterPanic applies the service's PanicPolicy to a panic just recorded.
func (a *Agent) afterPanic() {
	a.panicDue = false
	if a.stopping {
		return
	}
	now := time.Now()
	recent := a.restarts[:0]
	for _, at := range a.restarts {
		if now.Sub(at) < restartWindow {
			recent = append(recent, at)
		}
	}
	a.restarts = recent
	switch {
	case a.onPanic == StopOnPanic:
		a.log.Error("stopping after a panic (StopOnPanic)")
		a.Stop()
	case len(a.restarts) >= maxRestarts:
		a.log.Error("stopping: too many restarts", "restarts", len(a.restarts), "within", restartWindow)
		a.Stop()
	default:
		a.restarts = append(a.restarts, now)
		a.restart()
	}
}

// restart drops what Setup made and runs it again (RestartOnPanic).
func (a *Agent) restart() {
	for _, t := range a.timers {
		t.t.Stop()
	}
	a.timers = map[uint64]*Timer{}
	a.k.DropCalls(a.ref) // their callbacks belong to the state that panicked
	a.unsubscribeAll()
	for id := range a.watches {
		a.k.Unwatch(id)
	}
	a.watches = map[uint64]func(RegistryEvent){}
	a.watchTargets = nil
	for conv := range a.delayed {
		a.FailRequest(conv, &Failure{Code: CodeHandlerError, Details: "the service restarted after a panic before answering"})
	}
	a.methods = map[string]*method{}
	a.pub.kept = nil
	a.pub.onSubscription = handlers[func(SubscriptionEvent)]{}
	a.sub = subscriberState{}
	a.msgs = handlers[messageHandler]{}
	// Its children (StartChild) belong to the old state too; Setup
	// starts them again.
	for _, c := range a.ctx.Children() {
		if err := a.ctx.StopFuture(c).Wait(); err != nil {
			a.log.Warn("child did not stop for the restart", "child", c.Id, "error", err)
		}
	}
	a.ref.Restarted()
	if err := a.setup(false); err != nil {
		a.log.Error("stopping: setup failed on restart", "error", err)
		a.Stop()
		return
	}
	a.publishInterests()
	a.log.Warn("service restarted after a panic", "restarts", len(a.restarts))
}
