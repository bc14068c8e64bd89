package registry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// This file is the seam between the kernel and package service, which
// runs each service's actor (its agent) on it: registering and
// withdrawing services, watches, requests a service sends and the
// counters its limits keep. Programs and exchanges do not use it.

// LocalService returns the running service of this process at addr,
// hidden ones too, or nil.
func (k *Kernel) LocalService(addr Address) *Local {
	if addr.Process != k.pid {
		return nil
	}
	return k.ix.local(addr.ID)
}

// NewLocal makes the record of a service about to start: its address,
// its mailbox and what the registry will list. The service id is random
// (64 bits): knowing a process's id, one cannot guess the address of a
// service it did not announce (audience "" keeps a service out of every
// listing, and an address is enough to send to it).
func (k *Kernel) NewLocal(name, audience string, groups []string, hidden bool) *Local {
	l := &Local{name: name, audience: audience, groups: groups, done: make(chan struct{})}
	l.hidden.Store(hidden)
	l.seq = k.nextSeq.Add(1)
	for l.id == 0 || k.ix.local(l.id) != nil { // 0 is the process's own endpoint
		l.id = rand.Uint64()
	}
	l.addr = Address{Process: k.pid, ID: l.id}
	l.mb = newServiceMailbox(k, l)
	return l
}

// SpawnService starts the actor of service l, built by producer: under
// parent when given (a service starting a child of its own), else under
// the kernel's services supervisor. It returns once spawned, before the
// service's setup has run.
func (k *Kernel) SpawnService(ctx context.Context, parent actor.Context, l *Local, producer actor.Producer) (*actor.PID, error) {
	if k.closing.Load() {
		return nil, RuntimeFailure(CodeShutdown, "runtime is closed")
	}
	actorName := fmt.Sprintf("%s#%d", DisplayName(l.name), l.id)
	props := k.trackedProps(KindService, l.name, producer, l.detail, func() actor.Mailbox { return l.mb })
	if parent != nil {
		return parent.SpawnNamed(props, actorName)
	}
	reply := make(chan spawnResult, 1)
	k.sys.Root.Send(k.services, &spawnChild{props: props, name: actorName, reply: reply})
	select {
	case r := <-reply:
		return r.pid, r.err
	case <-ctx.Done():
		return nil, AsFailure(ctx.Err())
	}
}

// Name returns the service's name ("" for an anonymous one).
func (l *Local) Name() string { return l.name }

// Addr returns the service's address.
func (l *Local) Addr() Address { return l.addr }

// Audience returns the service's audience.
func (l *Local) Audience() string { return l.audience }

// PID returns the service's actor, once it has started.
func (l *Local) PID() *actor.PID { return l.pid }

// Started records the service's actor; its agent calls it as the actor
// starts, before anyone else can see l.
func (l *Local) Started(pid *actor.PID) { l.pid = pid }

// Stopped marks the service's actor gone (Done closes).
func (l *Local) Stopped() { close(l.done) }

// Done is closed once the service's actor has stopped.
func (l *Local) Done() <-chan struct{} { return l.done }

// Hidden reports whether the service is not listed yet.
func (l *Local) Hidden() bool { return l.hidden.Load() }

// SetupGroup joins (or leaves) a service group before the service is
// registered: the registration carries them.
func (l *Local) SetupGroup(g string, joined bool) {
	has := false
	for _, x := range l.groups {
		has = has || x == g
	}
	switch {
	case joined && !has:
		l.groups = append(l.groups, g)
	case !joined && has:
		out := l.groups[:0]
		for _, x := range l.groups {
			if x != g {
				out = append(out, x)
			}
		}
		l.groups = out
	}
}

// SetInterest publishes what the service listens to, for the console.
func (l *Local) SetInterest(in *Interest) { l.interests.Store(in) }

// BeginMessage tells the slow-handler watch that the next message (or
// the next envelope of a batch) begins; Serving names the method of the
// request being served ("" when none).
func (l *Local) BeginMessage() { l.mb.begin() }

// Serving names the method of the request being served, nil when done.
func (l *Local) Serving(method *string, deadline int64) {
	l.servingUntil.Store(deadline)
	l.mb.method.Store(method)
}

// Admit makes the service reachable at its address from now on, before
// its Setup runs: what Setup starts can answer at once (a publisher
// replays its kept reports the moment a subscription arrives, over TCP
// too), and that must not race the registration, which comes after
// Setup. Withdraw removes it again.
func (k *Kernel) Admit(l *Local) {
	k.ix.wlock()
	k.ix.locals[l.id] = l
	k.ix.wunlock()
}

// Register lists the service in the registry; the channel answers once
// it is (the agent's Start returns then).
func (k *Kernel) Register(l *Local, done chan error) {
	k.sys.Root.Send(k.registry, &regAddLocal{ref: l, done: done})
}

// Withdraw removes the service from the registry and fails the requests
// waiting on it; done is closed once that is done.
func (k *Kernel) Withdraw(l *Local, done chan struct{}) {
	k.sys.Root.Send(k.registry, &regRemoveLocal{ref: l, done: done})
}

// Announce lists a service started hidden.
func (k *Kernel) Announce(l *Local) {
	if l.hidden.Load() {
		k.sys.Root.Send(k.registry, &regAnnounce{ref: l})
	}
}

// SetGroup has a registered service join or leave a service group.
func (k *Kernel) SetGroup(l *Local, g string, joined bool) {
	k.sys.Root.Send(k.registry, &regGroup{addr: l.addr, group: g, joined: joined})
}

// WatchEvent is what a watching service's actor receives for watch ID.
type WatchEvent struct {
	ID    uint64
	Event RegistryEvent
}

// NextID returns a fresh id for a watch or a timer.
func (k *Kernel) NextID() uint64 { return k.nextWatch.Add(1) }

// Watch starts watch id of target t: events go to pid as *WatchEvent,
// first for what exists now, then for each change (rule 12).
func (k *Kernel) Watch(id uint64, pid *actor.PID, t Target) {
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
	k.sys.Root.Send(k.registry, &regWatch{w: w})
}

// Unwatch ends watch id.
func (k *Kernel) Unwatch(id uint64) { k.sys.Root.Send(k.registry, &regUnwatch{id: id}) }

// Route sends an envelope a service made on its way (answers, reports,
// subscriptions, messages). A report's sender learns of congestion from
// the failure.
func (k *Kernel) Route(e *Envelope) *Failure {
	if e.Kind == KindResponse || e.Kind == KindFailure {
		return k.reply(e)
	}
	return k.route(e, nil)
}

// NextConv returns a fresh conversation id.
func (k *Kernel) NextConv() uint64 { return k.nextConv.Add(1) }

// PendingCall is a request a service sent and has not had answered.
type PendingCall = pendingCall

// Conv returns the request's conversation id.
func (pc *pendingCall) Conv() uint64 { return pc.conv }

// Request sends a request of service owner and returns it pending: the
// answer (or a failure) comes to owner's actor as a *CallDone, after the
// current handler, within timeout. A request that cannot be sent fails
// the same way.
//
// The request carries its deadline, now plus timeout: SetTimeout later
// changes how long this process waits, not the deadline already sent.
func (k *Kernel) Request(owner *Local, to Target, method string, args []any, timeout time.Duration) *PendingCall {
	pc := &pendingCall{owner: owner}
	r, f := k.resolve(to)
	if f == nil {
		var p Payload
		var err error
		if p, err = encodeArgs(args); err != nil {
			f = RuntimeFailure(CodeBadArguments, err.Error())
		} else {
			f = k.send(pc, owner.addr, to, r, method, p, time.Now().Add(timeout).UnixNano())
		}
	}
	if f != nil {
		k.stats.countFailure(f.Code)
		pc.failed = true
		k.sys.Root.Send(owner.pid, &callDone{pc: pc, fail: f})
		return pc
	}
	k.SetTimeout(pc, timeout)
	return pc
}

// SetThen sets the callback for the answer; it runs in the owner's actor.
func (pc *pendingCall) SetThen(fn func(Payload, error)) { pc.then = fn }

// SetTimeout (re)sets how long the request waits for its answer before
// it fails with CodeTimedOut. Only the owner's actor calls it.
func (k *Kernel) SetTimeout(pc *PendingCall, d time.Duration) {
	if pc.failed {
		return
	}
	if pc.deadline != nil {
		pc.deadline.Stop()
	}
	k.pending.mu.Lock()
	pc.until = min(pc.until, time.Now().Add(d).UnixNano()) // no retry past it
	k.pending.mu.Unlock()
	pc.deadline = time.AfterFunc(d, func() {
		if k.pending.take(pc.conv) != nil {
			k.sendCancel(pc)
			pc.finish(k, Payload{}, RuntimeFailuref(CodeTimedOut, "no answer within %v", d))
		}
	})
}

// CallDone brings the outcome of a request a service sent into its
// actor.
type CallDone = callDone

// Finish stops the request's deadline, counts a failure, and returns
// the callback to run (nil when none) with the outcome.
func (k *Kernel) Finish(m *CallDone) (then func(Payload, error), res Payload, err error) {
	if m.pc.deadline != nil {
		m.pc.deadline.Stop()
	}
	if m.fail != nil {
		k.stats.countFailure(m.fail.Code)
		err = m.fail
	}
	return m.pc.then, m.res, err
}

// Cancel ends one of owner's outstanding requests with f, delivered to
// its callback; it reports whether the request was still outstanding.
func (k *Kernel) Cancel(owner *Local, conv uint64, f *Failure) bool {
	pc := k.pending.takeOwned(conv, owner)
	if pc == nil {
		return false
	}
	k.sendCancel(pc)
	pc.finish(k, Payload{}, f)
	return true
}

// CancelAll ends every outstanding request of owner with f.
func (k *Kernel) CancelAll(owner *Local, f *Failure) int {
	var taken []*pendingCall
	k.pending.failWhere(func(pc *pendingCall) bool {
		if pc.owner == owner {
			taken = append(taken, pc)
			return true
		}
		return false
	}, f)
	for _, pc := range taken {
		k.sendCancel(pc)
	}
	return len(taken)
}

// DropCalls forgets owner's outstanding requests without running their
// callbacks: the service is stopping.
func (k *Kernel) DropCalls(owner *Local) { k.pending.dropOwner(owner) }

// CountFailure counts a failure a service produced or received.
func (k *Kernel) CountFailure(c Code) { k.stats.countFailure(c) }

// Delaying counts n more (or, negative, fewer) delayed requests of
// service l.
func (k *Kernel) Delaying(l *Local, n int64) {
	l.delayed.Add(n)
	k.delayed.Add(n)
}

// AdmitDelayed reports whether service l, holding held delayed
// requests, may take one more request (Config.MaxDelayed,
// MaxDelayedTotal); a refusal is counted.
func (k *Kernel) AdmitDelayed(l *Local, held int) bool {
	if held < k.cfg.MaxDelayed && (held == 0 || k.delayed.Load() < int64(k.cfg.MaxDelayedTotal)) {
		return true
	}
	l.refused.Add(1)
	k.stats.delayedRefused.Add(1)
	return false
}

// TakeSubscription takes a slot for a subscription pattern a publisher
// holds for process p; when none is left it takes nothing, counts the
// refusal and says why.
func (k *Kernel) TakeSubscription(p ProcessID) (refused string) {
	if why := k.subs.take(p); why != "" {
		k.stats.subsRefused.Add(1)
		return why
	}
	return ""
}

// GiveSubscriptions gives back n slots of process p.
func (k *Kernel) GiveSubscriptions(p ProcessID, n int) { k.subs.give(p, n) }

// Resolve returns the address of the service a target names (for a
// Name, the one a call would pick).
func (k *Kernel) Resolve(t Target) (Address, *Failure) {
	r, f := k.resolve(t)
	return r.addr, f
}

// DelayedTotal returns the delayed requests of all services together.
func (k *Kernel) DelayedTotal() int64 { return k.delayed.Load() }
