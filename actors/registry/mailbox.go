package registry

// The service mailbox: bounded in bytes, dropping the oldest reports
// first (rule 25), with the watch for handlers that run too long.

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// serviceMailbox is the mailbox of a service's actor. It keeps the
// semantics of protoactor's default mailbox — system messages first,
// suspend and resume, a panic escalated to the supervisor, the
// dispatcher's throughput between yields — and adds what a service needs
// in front of it (rule 25):
//
//   - a bound in bytes (Config.ServiceQueueLimit) on the envelopes
//     waiting. A report or one-way message that would go over it makes
//     room by dropping the oldest queued reports and messages, so a
//     subscriber that recovers gets the latest state; it is dropped
//     itself only when dropping everything droppable before it would not
//     make room. A request over the bound is refused.
//   - what the watchdog needs to see a handler that runs too long: which
//     message is running (a sequence number) and, for a request, which
//     method.
//
// Posting and taking a message allocate nothing: the queue is a ring of
// slots that grows by doubling; a dropped message leaves an empty slot
// behind, skipped when taken and squeezed out when the ring is full.
type serviceMailbox struct {
	ref   *Local
	rt    *Kernel
	limit int64

	mu        sync.Mutex
	buf       []mailSlot // a ring; its length is a power of two
	head      int        // index of the oldest slot
	n         int        // slots in use, empty ones included
	dead      int        // empty slots: their message was dropped
	scan      int        // slots [head, head+scan) hold no droppable message
	queued    int64      // bytes of the messages waiting
	dropBytes int64      // the part of queued that may be dropped
	peak      int64      // the most bytes ever waiting, for tests

	smu     sync.Mutex
	sys     []any // system messages, oldest first from sysHead
	sysHead int

	userMessages atomic.Int32
	sysMessages  atomic.Int32
	status       atomic.Int32 // mailboxIdle or mailboxRunning
	suspended    atomic.Bool
	invoker      actor.MessageInvoker
	dispatcher   actor.Dispatcher
	process      func() // processMessages, bound once: a method value per schedule would allocate

	// What runs now, for the watchdog. seq is the consumer's own.
	seq     uint64
	cur     atomic.Uint64          // sequence number of the message running, 0 when idle
	method  atomic.Pointer[string] // the method of the request being served, if any
	episode atomic.Pointer[slowEpisode]
	// The watchdog's own notes.
	wSeq     uint64    // the message it saw running last time
	wSince   time.Time // when it first saw it
	wFlagged uint64    // the last message it reported as slow
}

// msgClass says what the queue limit does to a message.
type msgClass uint8

const (
	classFree      msgClass = iota // never limited: timers, answers to own calls, watch events, (un)subscriptions
	classLimited                   // refused over the limit: requests, batches that may hold requests
	classDroppable                 // dropped oldest first: reports, one-way messages, droppable batches
)

type mailSlot struct {
	msg   any // nil once dropped
	size  int64
	class msgClass
}

const (
	mailboxIdle int32 = iota
	mailboxRunning
)

const (
	minRing = 8
	// A ring this large is let go once it empties: a burst should not
	// pin its memory to an idle service.
	keepRing = 4096
)

var _ actor.Mailbox = (*serviceMailbox)(nil)

func newServiceMailbox(rt *Kernel, ref *Local) *serviceMailbox {
	m := &serviceMailbox{ref: ref, rt: rt, limit: int64(rt.cfg.ServiceQueueLimit)}
	m.process = m.processMessages
	return m
}

// PostUserMessage queues a message sent to the actor by protoactor's
// means (Root.Send and the like): timers, answers, watch events. They
// are never refused. Envelopes and batches normally come through offer,
// but are accounted for here too. Like protoactor's mailbox, it unpacks
// an actor.MessageBatch (and then queues the batch itself).
func (m *serviceMailbox) PostUserMessage(msg any) {
	switch msg := msg.(type) {
	case *Envelope:
		m.offer(msg, int64(msg.Size()), classFree)
		return
	case *EncodedBatch:
		m.offer(msg, int64(len(msg.Data)), classFree)
		return
	case actor.MessageBatch:
		for _, x := range msg.GetMessages() {
			m.PostUserMessage(x)
		}
	case *actor.MessageEnvelope:
		if b, ok := msg.Message.(actor.MessageBatch); ok {
			for _, x := range b.GetMessages() {
				m.PostUserMessage(x)
			}
		}
	}
	m.offer(msg, 0, classFree)
}

// offer queues msg, of size bytes, by the rules of its class. It reports
// false, with the bytes waiting, when a limited message does not fit and
// was not queued. Droppable messages are always taken: queued, or
// dropped and counted.
func (m *serviceMailbox) offer(msg any, size int64, class msgClass) (queued int64, ok bool) {
	var dropped uint64
	m.mu.Lock()
	if class != classFree && m.queued+size > m.limit {
		if class == classLimited {
			q := m.queued
			m.mu.Unlock()
			return q, false
		}
		if m.queued-m.dropBytes+size > m.limit {
			// Dropping every older droppable message would not make
			// room: drop this one, keep them.
			q := m.queued
			m.mu.Unlock()
			m.countDropped(envelopesIn(msg))
			return q, true
		}
		for m.queued+size > m.limit {
			n, ok := m.dropOldest()
			if !ok {
				break // cannot happen: dropBytes says there is room to make
			}
			dropped += n
		}
	}
	if m.n == len(m.buf) {
		m.makeRoom()
	}
	m.buf[(m.head+m.n)&(len(m.buf)-1)] = mailSlot{msg: msg, size: size, class: class}
	m.n++
	m.queued += size
	if class == classDroppable {
		m.dropBytes += size
	}
	if m.queued > m.peak {
		m.peak = m.queued
	}
	m.userMessages.Add(1)
	m.mu.Unlock()
	if dropped > 0 {
		m.countDropped(dropped)
	}
	m.schedule()
	return 0, true
}

// dropOldest drops the oldest droppable message waiting; it returns how
// many envelopes that was. Called with mu held.
func (m *serviceMailbox) dropOldest() (uint64, bool) {
	mask := len(m.buf) - 1
	for ; m.scan < m.n; m.scan++ {
		s := &m.buf[(m.head+m.scan)&mask]
		if s.msg == nil || s.class != classDroppable {
			continue
		}
		n := envelopesIn(s.msg)
		m.queued -= s.size
		m.dropBytes -= s.size
		*s = mailSlot{}
		m.dead++
		m.scan++
		m.userMessages.Add(-1)
		return n, true
	}
	return 0, false
}

// makeRoom makes room for one more slot: it squeezes out the empty
// slots when they are a quarter of the ring or more, else doubles it.
// Called with mu held.
func (m *serviceMailbox) makeRoom() {
	if m.dead > 0 && m.dead*4 >= m.n {
		mask := len(m.buf) - 1
		w := 0
		for r := 0; r < m.n; r++ {
			s := m.buf[(m.head+r)&mask]
			if s.msg == nil {
				continue
			}
			if w != r {
				m.buf[(m.head+w)&mask] = s
			}
			w++
		}
		for r := w; r < m.n; r++ {
			m.buf[(m.head+r)&mask] = mailSlot{}
		}
		m.n, m.dead, m.scan = w, 0, 0
		return
	}
	size := 2 * len(m.buf)
	if size < minRing {
		size = minRing
	}
	buf := make([]mailSlot, size)
	for i := 0; i < m.n; i++ {
		buf[i] = m.buf[(m.head+i)&(len(m.buf)-1)]
	}
	m.buf, m.head = buf, 0
}

// pop takes the oldest message waiting, or nil.
func (m *serviceMailbox) pop() any {
	m.mu.Lock()
	for m.n > 0 {
		s := m.buf[m.head]
		m.buf[m.head] = mailSlot{}
		m.head = (m.head + 1) & (len(m.buf) - 1)
		m.n--
		if m.scan > 0 {
			m.scan--
		}
		if s.msg == nil {
			m.dead--
			continue
		}
		m.queued -= s.size
		if s.class == classDroppable {
			m.dropBytes -= s.size
		}
		if m.n == 0 && len(m.buf) > keepRing {
			m.buf, m.head = nil, 0
		}
		m.userMessages.Add(-1)
		m.mu.Unlock()
		return s.msg
	}
	m.mu.Unlock()
	return nil
}

func (m *serviceMailbox) countDropped(n uint64) {
	m.ref.dropped.Add(n)
	m.rt.stats.droppedAtService.Add(n)
}

// envelopesIn counts the envelopes a droppable message holds.
func envelopesIn(msg any) uint64 {
	b, ok := msg.(*EncodedBatch)
	if !ok || b.Decode == nil {
		return 1
	}
	var e Envelope
	n := uint64(0)
	for rest := b.Data; len(rest) > 0; n++ {
		var err error
		if rest, err = b.Decode(rest, &e); err != nil {
			break
		}
	}
	return max(n, 1)
}

// queuedBytes returns the bytes waiting. Only the console asks, so it
// takes the lock rather than every message paying for an atomic copy.
func (m *serviceMailbox) queuedBytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.queued
}

// peakQueued returns the most bytes that ever waited.
func (m *serviceMailbox) peakQueued() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak
}

// PostSystemMessage queues a system message; they go before any user
// message.
func (m *serviceMailbox) PostSystemMessage(msg any) {
	m.smu.Lock()
	m.sys = append(m.sys, msg)
	m.smu.Unlock()
	m.sysMessages.Add(1)
	m.schedule()
}

func (m *serviceMailbox) popSystem() any {
	m.smu.Lock()
	defer m.smu.Unlock()
	if m.sysHead == len(m.sys) {
		return nil
	}
	msg := m.sys[m.sysHead]
	m.sys[m.sysHead] = nil
	m.sysHead++
	if m.sysHead == len(m.sys) {
		m.sys, m.sysHead = m.sys[:0], 0
	}
	return msg
}

// RegisterHandlers is called by protoactor as it spawns the actor.
func (m *serviceMailbox) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	m.invoker = invoker
	m.dispatcher = dispatcher
}

// Start is called once the actor is spawned; nothing to do.
func (m *serviceMailbox) Start() {}

// UserMessageCount returns how many user messages wait.
func (m *serviceMailbox) UserMessageCount() int { return int(m.userMessages.Load()) }

func (m *serviceMailbox) schedule() {
	if m.status.CompareAndSwap(mailboxIdle, mailboxRunning) {
		m.dispatcher.Schedule(m.process)
	}
}

func (m *serviceMailbox) processMessages() {
	for {
		m.run()
		m.idle()
		m.status.Store(mailboxIdle)
		// Anything posted after the loop ended?
		if m.sysMessages.Load() <= 0 && (m.suspended.Load() || m.userMessages.Load() <= 0) {
			return
		}
		if !m.status.CompareAndSwap(mailboxIdle, mailboxRunning) {
			return // a poster scheduled it again
		}
	}
}

func (m *serviceMailbox) run() {
	var msg any
	defer func() {
		if r := recover(); r != nil {
			m.invoker.EscalateFailure(r, msg)
		}
	}()
	i, t := 0, m.dispatcher.Throughput()
	for {
		if i > t {
			i = 0
			runtime.Gosched()
		}
		i++
		if m.sysMessages.Load() > 0 {
			if msg = m.popSystem(); msg != nil {
				m.sysMessages.Add(-1)
				switch msg.(type) {
				case *actor.SuspendMailbox:
					m.suspended.Store(true)
				case *actor.ResumeMailbox:
					m.suspended.Store(false)
				default:
					m.begin()
					m.invoker.InvokeSystemMessage(msg)
				}
				continue
			}
		}
		if m.suspended.Load() {
			return
		}
		if msg = m.pop(); msg == nil {
			return
		}
		m.begin()
		m.invoker.InvokeUserMessage(msg)
	}
}

// --- slow handlers ---

// slowEpisode is a handler the watchdog found running past
// Config.SlowHandler.
type slowEpisode struct {
	seq    uint64
	since  time.Time // when the watchdog first saw it running
	method string    // "" unless it serves a request
}

// begin marks the start of the next message (or of the next envelope of
// a batch): what ran before has finished.
func (m *serviceMailbox) begin() {
	m.seq++
	m.cur.Store(m.seq)
	if ep := m.episode.Load(); ep != nil {
		m.finishEpisode(ep)
	}
}

// idle marks the mailbox as having nothing running.
func (m *serviceMailbox) idle() {
	m.cur.Store(0)
	if ep := m.episode.Load(); ep != nil {
		m.finishEpisode(ep)
	}
}

// finishEpisode logs that a slow handler finished, once, whoever notices
// first: the mailbox as it moves on, or the watchdog.
func (m *serviceMailbox) finishEpisode(ep *slowEpisode) {
	if !m.episode.CompareAndSwap(ep, nil) {
		return
	}
	d := roundDuration(time.Since(ep.since))
	m.rt.log.Info("slow handler finished after "+d.String(), "service", DisplayName(m.ref.name),
		"address", m.ref.addr.String(), "method", ep.method, "busy_for", d)
}

// watch is the watchdog's look at the mailbox, every tick: a message
// seen running since longer than threshold is reported, once.
func (m *serviceMailbox) watch(now time.Time, threshold time.Duration) {
	cur := m.cur.Load()
	if ep := m.episode.Load(); ep != nil && ep.seq != cur {
		m.finishEpisode(ep) // the mailbox moved on without noticing
	}
	if cur == 0 || cur != m.wSeq {
		m.wSeq, m.wSince = cur, now
		return
	}
	if cur == m.wFlagged || now.Sub(m.wSince) < threshold {
		return
	}
	m.wFlagged = cur
	name := ""
	if mt := m.method.Load(); mt != nil {
		name = *mt
	}
	if m.cur.Load() != cur {
		return // it finished meanwhile; the method may be another's
	}
	ep := &slowEpisode{seq: cur, since: m.wSince, method: name}
	m.episode.Store(ep)
	d := roundDuration(now.Sub(m.wSince))
	m.rt.log.Warn("service handler running for "+d.String(), "service", DisplayName(m.ref.name),
		"address", m.ref.addr.String(), "method", name, "busy_for", d)
	if m.cur.Load() != cur {
		m.finishEpisode(ep) // finished as we flagged it: the mailbox may have missed the flag
	}
}

// busy returns how long the current handler has run, when it is past
// the slow threshold.
func (m *serviceMailbox) busy() (time.Duration, bool) {
	ep := m.episode.Load()
	if ep == nil {
		return 0, false
	}
	return time.Since(ep.since), true
}

// roundDuration keeps logs readable: whole seconds past ten, else
// milliseconds.
func roundDuration(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// watchdog is a runtime's one goroutine that looks for services whose
// handler runs longer than Config.SlowHandler.
type watchdog struct {
	rt        *Kernel
	threshold time.Duration
	stop      chan struct{}
	done      chan struct{}
}

func startWatchdog(rt *Kernel, threshold time.Duration) *watchdog {
	w := &watchdog{rt: rt, threshold: threshold, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// tick is a tenth of the threshold, within [1 ms, 1 s]: a handler is
// reported at most a tick or two late, and an idle process wakes up at
// most once a second.
func (w *watchdog) tick() time.Duration {
	return min(max(w.threshold/10, time.Millisecond), time.Second)
}

func (w *watchdog) run() {
	defer close(w.done)
	t := time.NewTicker(w.tick())
	defer t.Stop()
	var refs []*Local
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		ix := w.rt.ix
		ix.mu.RLock()
		for _, r := range ix.locals {
			refs = append(refs, r)
		}
		ix.mu.RUnlock()
		now := time.Now()
		for _, r := range refs {
			r.mb.watch(now, w.threshold)
		}
		clear(refs)
		refs = refs[:0]
	}
}

// close stops the watchdog and waits for it.
func (w *watchdog) close() {
	close(w.stop)
	<-w.done
}
