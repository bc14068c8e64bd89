package registry

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// This file is the seam between the in-process runtime and the exchange
// (package actors), which links processes. Services do not use it.

// Role is what an exchange endpoint is: a server (listens, meshes with
// other servers) or a client (dials one server).
type Role uint8

// Endpoint roles.
const (
	RoleServer Role = 1
	RoleClient Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleServer:
		return "server"
	case RoleClient:
		return "client"
	}
	return "unknown"
}

// MarshalText names the role in JSON.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Link is one established connection to another process as the registry
// sees it. The exchange implements it.
type Link interface {
	// Send queues e for the peer. It must not block, and must not keep e
	// after returning: e is encoded at once. For a report it may return a
	// CodeOverloaded failure although e was queued, when older reports
	// were dropped to make room. Otherwise it returns a
	// *Failure when e cannot be queued: CodeOverloaded when the link's
	// queue is full, CodeLinkLost when the link is closed,
	// CodePayloadTooLarge when e is over the frame limit.
	Send(e *Envelope) error
	// Info describes the link; it does not change while the link is up.
	Info() LinkInfo
}

// RoomWaiter is a Link a synchronous caller can wait on when it refused
// a request because its queue was full: the caller, blocked until its
// answer anyway, waits for room until its deadline (backpressure, as a
// client library blocks a caller on its full buffer) instead of failing
// at once. Asynchronous requests, sent from inside an actor that must
// not block, still fail at once.
type RoomWaiter interface {
	// AwaitRoom reports whether a request may fit now; false when the
	// link closed, its peer stopped reading or until passed.
	AwaitRoom(until time.Time) bool
}

// LinkInfo describes a link.
type LinkInfo struct {
	ID            string    // unique in this process
	ExchangeGroup string    // the group both ends belong to
	LocalRole     Role      // this process's endpoint on the link
	PeerRole      Role      // the peer's endpoint
	PeerProcess   ProcessID // the peer's process
	PeerNode      string    // the peer's node name
	PeerAddress   string    // the peer's network address
}

// Change is what the registry tells an exchange: a binding (or, with
// Process set, a whole process) became available or was withdrawn, or a
// binding joined or left Group. Origin is the link it came through, nil
// for this process's own services.
type Change struct {
	Kind    EventKind
	Binding Binding
	Group   string
	Process bool
	Origin  Link
	// Draining marks the withdrawal of a service that is draining: it
	// still answers the requests it took, so callers waiting on it are
	// not failed, but no new call picks it.
	Draining bool
}

// Dump is everything the registry knows, sent to an exchange when a link
// comes up so it can announce what its filters allow (rule 8).
type Dump struct {
	Link    Link
	Changes []Change
}

// AttachExchange makes the registry send every later *Change to pid, in
// order. It returns once attached.
func (rt *Kernel) AttachExchange(pid *actor.PID) {
	done := make(chan struct{})
	rt.sys.Root.Send(rt.registry, &regAttach{pid: pid, done: done})
	<-done
}

// DetachExchange stops the changes AttachExchange started.
func (rt *Kernel) DetachExchange(pid *actor.PID) {
	rt.sys.Root.Send(rt.registry, &regDetach{pid: pid})
}

// RequestDump asks the registry to send pid a *Dump for link. Changes
// sent to pid before the dump are already part of it.
func (rt *Kernel) RequestDump(pid *actor.PID, link Link) {
	rt.sys.Root.Send(rt.registry, &regDump{pid: pid, link: link})
}

// Import records what a link announced: a binding or process available
// or withdrawn, or a group change. Changes are applied in call order.
func (rt *Kernel) Import(link Link, c Change) {
	rt.sys.Root.Send(rt.registry, &regImport{link: link, change: c})
}

// LinkDown withdraws everything learned through link and fails the
// requests that went through it. It returns once done.
func (rt *Kernel) LinkDown(link Link) {
	done := make(chan struct{})
	rt.sys.Root.Send(rt.registry, &regLinkDown{link: link, done: done})
	<-done
}

// RouteTo returns the link toward process p, or nil when p is this
// process or unknown.
func (rt *Kernel) RouteTo(p ProcessID) Link { return rt.ix.routeTo(p) }

// RouteGeneration changes whenever a route may have changed; a reader
// may cache RouteTo answers while it stays the same.
func (rt *Kernel) RouteGeneration() uint64 { return rt.ix.gen.Load() }

// DeliverBatch is Deliver for several envelopes that arrived together.
func (rt *Kernel) DeliverBatch(es []*Envelope, from Link) {
	for _, e := range es {
		rt.route(e, from)
	}
}

// EncodedBatch is several envelopes for one local service, still in
// their wire form: the service's actor decodes them one at a time into a
// reused Envelope, so a busy link costs no allocation per envelope.
// Decode reads the envelope at the front of Data and returns the rest;
// Data must never change once handed over. A request's deadline, sent as
// the time it had left, is counted from the batch's arrival, not from
// when the service gets to decode it: Decode knows when that was.
type EncodedBatch struct {
	Data   []byte
	Decode func(b []byte, e *Envelope) (rest []byte, err error)
	// Droppable says every envelope in the batch is a report or a one-way
	// message, so the service's queue limit may drop the batch whole,
	// like a report, rather than refuse it (rule 25).
	Droppable bool
	// From is the link the batch arrived on: answers go back over it
	// (Envelope.Via).
	From Link
}

// DeliverEncoded hands an encoded batch to the local service with that
// id. It reports false when there is no such service (or it is hidden);
// the caller then decodes and delivers one by one, so requests get their
// failures. Batches hold requests, reports, subscriptions and messages,
// never responses.
//
// It also reports false when the service is over its queue limit and
// the batch is not Droppable: one by one, the envelopes then meet the
// limit's rules (reports dropped, requests refused). A Droppable batch
// is always taken: queued, older reports dropped to make room, or
// dropped whole (and counted) when that would not make room.
func (rt *Kernel) DeliverEncoded(id uint64, b *EncodedBatch) bool {
	ref := rt.ix.local(id)
	if ref == nil || ref.hidden.Load() || (rt.draining.Load() && !b.Droppable) {
		return false // one by one: requests are refused while draining
	}
	class := classLimited
	if b.Droppable {
		class = classDroppable
		if len(b.Data) > rt.cfg.ServiceQueueLimit {
			// It could never fit, and dropping it whole would lose the
			// newest reports: one by one, the oldest make room instead.
			return false
		}
	}
	_, ok := ref.mb.offer(b, int64(len(b.Data)), class)
	return ok
}

// LearnRoute records that process p was heard from over link, so replies
// to it can find their way back before its announcement arrives.
func (rt *Kernel) LearnRoute(p ProcessID, link Link) {
	if p == rt.pid {
		return
	}
	rt.ix.mu.RLock()
	known := rt.ix.learned[p] == link || rt.ix.procs[p] != nil
	rt.ix.mu.RUnlock()
	if known {
		return
	}
	rt.ix.wlock()
	rt.ix.learned[p] = link
	rt.ix.wunlock()
}

// Deliver takes an envelope that arrived from a link: it goes to a local
// service, or on toward its process. It never blocks.
func (rt *Kernel) Deliver(e *Envelope, from Link) {
	rt.route(e, from)
}

// RouteAround sends an answer (response or failure) that could not go
// over link avoid, a link closing, by any other way to its process; with
// none it is counted undelivered. A link closing under answers in flight
// (a client moving to another server, a server draining) loses none
// that can still arrive.
func (rt *Kernel) RouteAround(e *Envelope, avoid Link) {
	if e.To.Process == rt.pid {
		rt.deliverLocal(e, nil)
		return
	}
	if l := rt.ix.routeToExcept(e.To.Process, avoid); l != nil && l.Send(e) == nil {
		return
	}
	rt.stats.undelivered.Add(1)
}

// FailureEnvelope returns the failure answering request e, for exchanges
// that must fail a request they cannot pass on.
func FailureEnvelope(e *Envelope, f *Failure) *Envelope {
	return &Envelope{Kind: KindFailure, To: e.From, From: e.To, Conv: e.Conv, ContentType: ContentCBOR, Data: EncodeFailure(f)}
}

// Sync returns once the registry has handled everything sent to it
// before, such as imports queued by a link's reader.
func (rt *Kernel) Sync() {
	done := make(chan struct{})
	rt.sys.Root.Send(rt.registry, &regSync{done: done})
	select {
	case <-done:
	case <-time.After(rt.cfg.StopTimeout):
	}
}

// PendingVia returns how many calls of this process wait for an answer
// that will come over link: a client moving to another server lets the
// old link go once none does (rule 11).
func (rt *Kernel) PendingVia(link Link) int { return rt.pending.countVia(link) }
