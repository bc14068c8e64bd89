package registry

// The calls of this process waiting for an answer, failed at once when
// their target or link goes (rule 17).

import (
	"sync"
	"time"
)

// pendingCall is one request waiting for its answer. Whoever takes it out
// of the table finishes it, exactly once.
type pendingCall struct {
	conv   uint64
	target Address
	via    Link   // the link the request went out on; nil for local targets
	owner  *Local // the agent whose callback runs, for async calls
	from   Address
	sent   int64 // the deadline the request carries, Unix ns
	until  int64 // when this process stops waiting (no retry after it)

	// What a retry needs (rule 17): the name or group called, and the
	// request. Set for calls by name or group only.
	retarget Target
	method   string
	args     Payload
	retried  bool // guarded by the table's lock

	// env is the request while its caller hands it to a link (dispatch).
	env Envelope

	// Synchronous calls wait on done; the result is in res/fail.
	done  chan struct{}
	timer *time.Timer
	res   Payload
	fail  *Failure

	// Asynchronous calls: the callback runs inside the owner's actor.
	then     func(Payload, error)
	deadline *time.Timer
	failed   bool // it could not be sent: its failure is on its way
}

// callDone brings an async call's outcome into its owner's mailbox.
type callDone struct {
	pc   *pendingCall
	res  Payload
	fail *Failure
}

var syncCallPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &pendingCall{done: make(chan struct{}, 1), timer: t}
}}

// pendingTable holds every request of this process that awaits an
// answer, by conversation id and by target, so a withdrawal, a lost link
// or a vanished process fails the right ones at once (rule 17).
type pendingTable struct {
	rt       *Kernel
	mu       sync.Mutex
	calls    map[uint64]*pendingCall
	byTarget map[Address]map[uint64]*pendingCall
	closed   *Failure // set once the runtime stops: new calls fail at once
}

func newPendingTable(rt *Kernel) *pendingTable {
	return &pendingTable{rt: rt, calls: map[uint64]*pendingCall{}, byTarget: map[Address]map[uint64]*pendingCall{}}
}

func (t *pendingTable) add(pc *pendingCall) *Failure {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed != nil {
		return t.closed
	}
	t.calls[pc.conv] = pc
	m := t.byTarget[pc.target]
	if m == nil {
		// Per-target sets stay when they empty, so a steady stream of
		// calls to one service does not allocate; failTarget clears them.
		if len(t.byTarget) > 4096 {
			t.sweepLocked()
		}
		m = map[uint64]*pendingCall{}
		t.byTarget[pc.target] = m
	}
	m[pc.conv] = pc
	return nil
}

// repoint moves call pc, registered as conv, to the binding r for a
// retry, and returns its request to r; it reports false when pc is no
// longer that call (its caller gave up; a pooled pc may serve another).
func (t *pendingTable) repoint(pc *pendingCall, conv uint64, r resolved) (*Envelope, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.calls[conv] != pc || pc.conv != conv {
		return nil, false
	}
	delete(t.byTarget[pc.target], pc.conv)
	pc.target, pc.via = r.addr, r.via
	m := t.byTarget[r.addr]
	if m == nil {
		m = map[uint64]*pendingCall{}
		t.byTarget[r.addr] = m
	}
	m[pc.conv] = pc
	return pc.request(r), true
}

// reset clears a pooled call for its next use: nothing of the last call
// (its arguments above all) stays reachable.
func (pc *pendingCall) reset() {
	pc.res, pc.fail, pc.via, pc.retarget, pc.args, pc.method = Payload{}, nil, nil, nil, Payload{}, ""
}

func (t *pendingTable) sweepLocked() {
	for a, m := range t.byTarget {
		if len(m) == 0 {
			delete(t.byTarget, a)
		}
	}
}

// take removes and returns the call, or nil when it was already finished.
func (t *pendingTable) take(conv uint64) *pendingCall {
	t.mu.Lock()
	pc := t.calls[conv]
	if pc != nil {
		delete(t.calls, conv)
		delete(t.byTarget[pc.target], conv)
	}
	t.mu.Unlock()
	return pc
}

// takeOwned is take for one agent's own calls only.
func (t *pendingTable) takeOwned(conv uint64, owner *Local) *pendingCall {
	t.mu.Lock()
	defer t.mu.Unlock()
	pc := t.calls[conv]
	if pc == nil || pc.owner != owner {
		return nil
	}
	delete(t.calls, conv)
	delete(t.byTarget[pc.target], conv)
	return pc
}

// complete finishes the call an arriving response or failure answers.
// Answers nobody waits for any more (late, cancelled) are dropped.
func (t *pendingTable) complete(e *Envelope) {
	if e.Kind == KindFailure && e.NotRun && t.rt.retry(e.Conv) {
		return
	}
	pc := t.take(e.Conv)
	if pc == nil {
		t.rt.stats.lateReplies.Add(1)
		return
	}
	if e.Kind == KindFailure {
		pc.finish(t.rt, Payload{}, decodeFailure(e.Data))
		return
	}
	pc.finish(t.rt, Payload{ContentType: e.ContentType, Data: e.Data}, nil)
}

func (t *pendingTable) failWhere(match func(*pendingCall) bool, f *Failure) {
	t.mu.Lock()
	var hit []*pendingCall
	for conv, pc := range t.calls {
		if match(pc) {
			hit = append(hit, pc)
			delete(t.calls, conv)
			delete(t.byTarget[pc.target], conv)
		}
	}
	t.mu.Unlock()
	for _, pc := range hit {
		pc.finish(t.rt, Payload{}, f)
	}
}

func (t *pendingTable) failTarget(a Address, f *Failure) {
	t.mu.Lock()
	m := t.byTarget[a]
	delete(t.byTarget, a)
	hit := make([]*pendingCall, 0, len(m))
	for conv, pc := range m {
		delete(t.calls, conv)
		hit = append(hit, pc)
	}
	t.mu.Unlock()
	for _, pc := range hit {
		pc.finish(t.rt, Payload{}, f)
	}
}

func (t *pendingTable) failProcess(p ProcessID, f *Failure) {
	t.failWhere(func(pc *pendingCall) bool { return pc.target.Process == p }, f)
}

func (t *pendingTable) failLink(l Link, f *Failure) {
	t.failWhere(func(pc *pendingCall) bool { return pc.via == l }, f)
}

// dropOwner forgets an agent's async calls without running callbacks: the
// agent is gone and nothing may run in it.
func (t *pendingTable) dropOwner(owner *Local) {
	var dropped []*pendingCall
	t.mu.Lock()
	for conv, pc := range t.calls {
		if pc.owner == owner {
			delete(t.calls, conv)
			delete(t.byTarget[pc.target], conv)
			if pc.deadline != nil {
				pc.deadline.Stop()
			}
			dropped = append(dropped, pc)
		}
	}
	t.mu.Unlock()
	for _, pc := range dropped {
		t.rt.sendCancel(pc) // nobody waits for the answer any more
	}
}

// close fails everything and refuses new calls.
func (t *pendingTable) close(f *Failure) {
	t.mu.Lock()
	t.closed = f
	t.mu.Unlock()
	t.failWhere(func(*pendingCall) bool { return true }, f)
}

func (t *pendingTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.calls)
}

// finish delivers the outcome: wakes a synchronous caller, or posts the
// outcome to the owning agent.
func (pc *pendingCall) finish(rt *Kernel, res Payload, f *Failure) {
	if pc.owner != nil {
		// The deadline timer is stopped by the owner (Agent.finishCall):
		// only the owner's actor touches it, so Timeout needs no lock.
		rt.sys.Root.Send(pc.owner.pid, &callDone{pc: pc, res: res, fail: f})
		return
	}
	pc.res, pc.fail = res, f
	pc.done <- struct{}{}
}

// decodeFailure reads a failure envelope's body; a body that does not
// decode still fails the call, with the reason.
func decodeFailure(b []byte) *Failure {
	var f Failure
	if err := decMode.Unmarshal(b, &f); err != nil || f.Code == 0 {
		return RuntimeFailuref(CodeResponseDecoding, "undecodable failure: %v", err)
	}
	return &f
}

// EncodeFailure encodes the body of a failure envelope.
func EncodeFailure(f *Failure) []byte {
	b, err := encMode.Marshal(f)
	if err != nil { // a struct of ints and strings always encodes
		panic(err)
	}
	return b
}

// countVia returns how many calls wait for an answer over link l: those
// that went out on it, and those to its peer's own services, which
// answer over it whatever link the request took.
func (t *pendingTable) countVia(l Link) int {
	peer := l.Info().PeerProcess
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, pc := range t.calls {
		if pc.via == l || pc.target.Process == peer {
			n++
		}
	}
	return n
}
