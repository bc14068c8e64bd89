package registry

import (
	"context"
	"time"
)

// --- routing ---

// route sends an envelope on its way: to a local agent, to the pending
// call it answers, or to the link toward its process. from is the link it
// arrived on (nil when sent here), so it never bounces straight back.
// A report's sender learns of congestion from the returned failure.
func (rt *Kernel) route(e *Envelope, from Link) *Failure {
	if e.To.Process == rt.pid {
		rt.deliverLocal(e, from)
		return nil
	}
	link := rt.ix.routeTo(e.To.Process)
	if link == nil || link == from {
		f := RuntimeFailuref(CodeNoSuchService, "no route to process %s", e.To.Process)
		rt.undeliverable(e, f, true) // stopped on its way: it reached no handler
		return f
	}
	if err := link.Send(e); err != nil {
		f := AsFailure(err)
		if e.Kind == KindReport && f.Code == CodeOverloaded {
			return f // queued or dropped by the link, which counts it
		}
		if (e.Kind == KindResponse || e.Kind == KindFailure) && f.Code == CodeLinkLost {
			rt.RouteAround(e, link) // the link is closing: another way, if any
			return nil
		}
		rt.undeliverable(e, f, false)
		return f
	}
	return nil
}

func (rt *Kernel) deliverLocal(e *Envelope, from Link) {
	switch e.Kind {
	case KindResponse, KindFailure:
		rt.pending.complete(e)
		return
	case KindCancel:
		rt.cancelArrived(e)
		return
	}
	if e.To.ID == 0 && e.Kind == KindRequest {
		e.Via = from
		rt.answerProcess(e)
		return
	}
	ref := rt.ix.local(e.To.ID)
	if ref == nil || (e.Kind == KindRequest && ref.hidden.Load()) {
		rt.undeliverable(e, RuntimeFailuref(CodeNoSuchService, "no service at %s", e.To), false)
		return
	}
	if e.Kind == KindRequest {
		e.Via = from
	}
	if e.Kind == KindRequest && from != nil && rt.draining.Load() {
		// Sent before the caller heard of the withdrawal: it may try
		// another instance (rule 17).
		rt.undeliverable(e, RuntimeFailuref(CodeWithdrawn, "%s is draining: withdrawn, not run", DisplayName(ref.name)), true)
		return
	}
	if f := rt.post(ref, e); f != nil {
		rt.undeliverable(e, f, true)
	}
}

// post puts an envelope in a local service's mailbox, within its queue
// limit (rule 25; see serviceMailbox): a report or one-way message
// is queued, older ones dropped to make room, or dropped itself (all
// counted); a request over the limit is refused with CodeOverloaded.
// That bounds the memory a slow service can make its process hold,
// whoever sends to it.
func (rt *Kernel) post(ref *Local, e *Envelope) *Failure {
	class := classLimited
	switch e.Kind {
	case KindReport, KindMessage:
		class = classDroppable
	case KindSubscribe, KindUnsubscribe:
		class = classFree
	}
	if q, ok := ref.mb.offer(e, int64(e.Size()), class); !ok {
		ref.refused.Add(1)
		return RuntimeFailuref(CodeOverloaded, "%s is %d bytes behind, over its queue limit of %d", DisplayName(ref.name), q, rt.cfg.ServiceQueueLimit)
	}
	return nil
}

// undeliverable answers a request that cannot go on with a failure, and
// counts anything else as dropped. notRun marks the failure as one the
// caller may retry elsewhere: the request provably reached no handler.
func (rt *Kernel) undeliverable(e *Envelope, f *Failure, notRun bool) {
	rt.stats.countFailure(f.Code)
	if e.Kind != KindRequest {
		rt.stats.undelivered.Add(1)
		return
	}
	rt.reply(&Envelope{Kind: KindFailure, To: e.From, From: e.To, Conv: e.Conv, ContentType: ContentCBOR, Data: EncodeFailure(f), NotRun: notRun, Via: e.Via})
}

// reply sends an answer back the way its request came (e.Via), or, for
// a request made here or a link gone meanwhile, by the best way there is.
func (rt *Kernel) reply(e *Envelope) *Failure {
	via := e.Via
	e.Via = nil
	if via == nil || e.To.Process == rt.pid {
		return rt.route(e, nil)
	}
	if err := via.Send(e); err != nil {
		rt.RouteAround(e, via)
	}
	return nil
}

// --- calls ---

// resolved is where a request goes.
type resolved struct {
	addr  Address
	entry *entry // the binding, when the target is listed
	local *Local // set for local targets
	via   Link   // set for remote targets
}

// resolve finds the service a target names: for a name or a service
// group, the next of the equally preferred bindings (rule 13).
func (rt *Kernel) resolve(to Target) (resolved, *Failure) {
	switch t := to.(type) {
	case Name:
		e := rt.ix.pick(string(t), Address{})
		if e == nil {
			return resolved{}, RuntimeFailuref(CodeNoSuchService, "no service named %q", string(t))
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
			return resolved{}, RuntimeFailuref(CodeNoSuchService, "no service at %s", t)
		}
		if l := rt.ix.routeTo(t.Process); l != nil {
			return resolved{addr: t, via: l}, nil
		}
		return resolved{}, RuntimeFailuref(CodeNoSuchService, "no route to %s", t)
	case Group:
		e := rt.ix.pickOfGroup(string(t), Address{})
		if e == nil {
			return resolved{}, RuntimeFailuref(CodeNoSuchService, "no member of service group %q", string(t))
		}
		return rt.resolveEntry(e)
	case nil:
		return resolved{}, RuntimeFailure(CodeBadTarget, "no target")
	}
	return resolved{}, RuntimeFailuref(CodeBadTarget, "cannot call %s: a call goes to a name, an address or a service group", to)
}

func isNameOrGroup(t Target) bool {
	switch t.(type) {
	case Name, Group:
		return true
	}
	return false
}

// resolveExcept is resolve for a name or group, passing over the binding
// at except: where a retry goes (rule 17).
func (rt *Kernel) resolveExcept(to Target, except Address) (resolved, *Failure) {
	var e *entry
	switch t := to.(type) {
	case Name:
		e = rt.ix.pick(string(t), except)
	case Group:
		e = rt.ix.pickOfGroup(string(t), except)
	}
	if e == nil {
		return resolved{}, RuntimeFailuref(CodeNoSuchService, "no other service for %s", to)
	}
	return rt.resolveEntry(e)
}

func (rt *Kernel) resolveEntry(e *entry) (resolved, *Failure) {
	if e.local != nil {
		return resolved{addr: e.addr, entry: e, local: e.local}, nil
	}
	rt.ix.mu.RLock()
	via := e.via()
	rt.ix.mu.RUnlock()
	if via == nil {
		return resolved{}, RuntimeFailuref(CodeNoSuchService, "no route to %s", e.addr)
	}
	return resolved{addr: e.addr, entry: e, via: via}, nil
}

// send puts a request to to (resolved as r) on its way and registers pc
// under a new conversation id; the request carries until, its deadline.
// On failure pc is not registered. A request refused before it left
// this process (a binding withdrawn, a link closing, a full mailbox) goes
// once to the next binding of a name or group (rule 17).
func (rt *Kernel) send(pc *pendingCall, from Address, to Target, r resolved, method string, p Payload, until int64) *Failure {
	if len(p.Data) > rt.cfg.MaxPayload {
		return RuntimeFailuref(CodePayloadTooLarge, "arguments are %d bytes, the limit is %d", len(p.Data), rt.cfg.MaxPayload)
	}
	pc.conv = rt.nextConv.Add(1)
	pc.from, pc.sent, pc.until, pc.method, pc.args = from, until, until, method, p
	pc.target, pc.via, pc.retarget, pc.retried = r.addr, r.via, nil, false
	switch to.(type) {
	case Name, Group:
		pc.retarget = to
	}
	if f := rt.pending.add(pc); f != nil {
		return f
	}
	rt.stats.requests.Add(1)
	f := rt.dispatch(pc, r)
	if f == nil || pc.retarget == nil || time.Now().UnixNano() >= until {
		return f
	}
	next, nf := rt.resolveExcept(pc.retarget, r.addr)
	if nf != nil {
		return f
	}
	pc.target, pc.via, pc.retried = next.addr, next.via, true
	if af := rt.pending.add(pc); af != nil {
		return af
	}
	return rt.dispatch(pc, next)
}

// dispatch sends the request of registered call pc to r. When it cannot
// go, pc is taken out again and the failure returned (nil when someone
// else finished pc meanwhile: the outcome reaches its caller that way).
// Called by pc's caller only.
func (rt *Kernel) dispatch(pc *pendingCall, r resolved) *Failure {
	if r.local != nil {
		return rt.dispatchTo(pc.conv, r, pc.request(r))
	}
	// A link encodes the request before Send returns (Link): the call's
	// own envelope serves, not one allocated per request.
	pc.env = pc.requestValue(r)
	f := rt.dispatchTo(pc.conv, r, &pc.env)
	pc.env = Envelope{}
	return f
}

// request is pc's request envelope, to r. Read by pc's caller, or under
// the table's lock while pc is registered.
func (pc *pendingCall) request(r resolved) *Envelope {
	e := pc.requestValue(r)
	return &e
}

func (pc *pendingCall) requestValue(r resolved) Envelope {
	return Envelope{Kind: KindRequest, To: r.addr, From: pc.from, Conv: pc.conv, Subject: pc.method,
		ContentType: pc.args.ContentType, Data: pc.args.Data, Deadline: pc.sent}
}

// dispatchTo sends e, the request of the call registered as conv, to r;
// when it cannot go, the call is taken out again and the failure
// returned (nil when the call was finished meanwhile).
func (rt *Kernel) dispatchTo(conv uint64, r resolved, e *Envelope) *Failure {
	fail := func(f *Failure) *Failure {
		if rt.pending.take(conv) == nil {
			return nil
		}
		return f
	}
	// Checked after registering: either we see the withdrawal here or the
	// registry's failTarget sees our call (both under the table's lock).
	if r.entry != nil && r.entry.withdrawn.Load() {
		return fail(RuntimeFailuref(CodeWithdrawn, "%s was withdrawn", r.addr))
	}
	// The same for an unlisted local service: the registry drops it from
	// the locals before failing the calls waiting on it.
	if r.entry == nil && r.local != nil && rt.ix.local(r.addr.ID) != r.local {
		return fail(RuntimeFailuref(CodeWithdrawn, "%s has stopped", r.addr))
	}
	if r.local != nil {
		if f := rt.post(r.local, e); f != nil {
			return fail(f)
		}
		return nil
	}
	if err := r.via.Send(e); err != nil {
		return fail(AsFailure(err))
	}
	return nil
}

// retry sends a request again that provably reached no handler (its
// failure says not run) to the next binding of the name or group it
// called, once, within its deadline (rule 17). It reports whether the
// call is taken care of; false leaves the failure to finish it.
func (rt *Kernel) retry(conv uint64) bool {
	t := rt.pending
	t.mu.Lock()
	pc := t.calls[conv]
	if pc == nil || pc.retarget == nil || pc.retried || time.Now().UnixNano() >= pc.until {
		t.mu.Unlock()
		return false
	}
	pc.retried = true
	failed, retarget := pc.target, pc.retarget
	t.mu.Unlock()
	// Unlocked, pc may be finished and, pooled, reused by another call:
	// only what was read above, and repoint's checks under the lock, are
	// trusted.
	r, f := rt.resolveExcept(retarget, failed)
	if f != nil {
		return false
	}
	e, ok := t.repoint(pc, conv, r)
	if !ok {
		return true // its caller gave up meanwhile
	}
	if f := rt.dispatchTo(conv, r, e); f != nil {
		// dispatchTo took the call out under conv: it is still this one.
		rt.stats.countFailure(f.Code)
		pc.finish(rt, Payload{}, f)
	}
	return true
}

// CallFrom calls a method on behalf of from (a service of this process,
// or the process itself: Address{Process: ProcessID()}) and waits for
// the answer, ctx's deadline or the configured CallTimeout, whichever
// comes first; the request carries that deadline, and a caller giving up
// cancels it where it runs. The error is a *Failure.
func (rt *Kernel) CallFrom(ctx context.Context, from Address, to Target, method string, args []any) (Payload, error) {
	if rt.closing.Load() {
		rt.stats.countFailure(CodeShutdown)
		return Payload{}, RuntimeFailure(CodeShutdown, "runtime is closed")
	}
	r, f := rt.resolve(to)
	if f != nil && f.Code == CodeNoSuchService && isNameOrGroup(to) {
		// While relinking, wait for the resync (rule 13); and look again
		// either way: the resync may have come since the first look.
		rt.awaitRelink(ctx)
		r, f = rt.resolve(to)
	}
	if f != nil {
		rt.stats.countFailure(f.Code)
		return Payload{}, f
	}
	p, err := encodeArgs(args)
	if err != nil {
		return Payload{}, RuntimeFailure(CodeBadArguments, err.Error())
	}
	dl, hasDeadline := ctx.Deadline()
	if !hasDeadline {
		dl = time.Now().Add(rt.cfg.CallTimeout)
	}
	pc := syncCallPool.Get().(*pendingCall)
	f = rt.send(pc, from, to, r, method, p, dl.UnixNano())
	for f != nil && f.Code == CodeOverloaded && r.via != nil && ctx.Err() == nil {
		// The link's queue is full: wait for room, as this caller waits
		// for its answer anyway, and send again (RoomWaiter).
		w, ok := r.via.(RoomWaiter)
		if !ok || !w.AwaitRoom(dl) {
			break
		}
		if r, f = rt.resolve(to); f == nil {
			rt.stats.requests.Add(^uint64(0)) // the same request: counted once
			f = rt.send(pc, from, to, r, method, p, dl.UnixNano())
		}
	}
	if f != nil {
		pc.reset()
		syncCallPool.Put(pc)
		rt.stats.countFailure(f.Code)
		return Payload{}, f
	}
	var expired <-chan time.Time
	if !hasDeadline {
		pc.timer.Reset(time.Until(dl)) // CallTimeout, less any wait for room
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
		f = rt.abandon(pc, RuntimeFailuref(CodeTimedOut, "no answer within %v", rt.cfg.CallTimeout))
		res = pc.res
	}
	if expired != nil {
		pc.timer.Stop()
	}
	pc.reset()
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
func (rt *Kernel) abandon(pc *pendingCall, f *Failure) *Failure {
	if rt.pending.take(pc.conv) != nil {
		rt.sendCancel(pc)
		return f
	}
	<-pc.done
	return pc.fail
}
