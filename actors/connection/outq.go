package connection

// A link's bounded outbound queue and its writer goroutine: frames batch
// into one write, reports drop oldest first, requests are refused when it
// is full (rules 24, 25).

import (
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// frameClass says what the queue may do with a frame when it is full.
type frameClass uint8

const (
	classControl frameClass = iota // announcements, responses, failures: never dropped
	classRequest                   // refused with "overloaded" when the queue is full
	classReport                    // dropped oldest first when the queue is full
)

type frameMeta struct {
	off, n  int
	class   frameClass
	dropped bool
}

// errQueueClosed and errOverloaded are what push reports; the link turns
// them into failures.
var (
	errQueueClosed = errors.New("link closed")
	errOverloaded  = errors.New("outbound queue full")
	errHardLimit   = errors.New("outbound queue over its hard limit: the peer is not reading")
	errOverBudget  = errors.New("the node's outbound budget is full and this link holds the most")
	// errDroppedOlder says a report was queued, but only by dropping
	// older ones: a signal for the publisher, not a failure of this report.
	errDroppedOlder = errors.New("outbound queue full: older reports dropped")
)

// outQueue is a link's bounded outbound queue. Senders append encoded
// frames to one buffer under a short lock; a writer goroutine swaps the
// buffer out and writes it with one system call, so under load many
// frames share a write. When the peer reads too slowly the pending bytes
// reach the soft limit: reports are then dropped oldest first (counted),
// requests are refused, and everything else is kept up to the hard
// limit, past which the link is closed (rules 24, 25). The soft
// limit is a bound on what waits before a frame, not on the frame: one
// frame up to the maximum (16 MiB) fits a queue that is not backed up
// (rule 37). Every queue of a node also draws on the node's Budget.
//
// Why not the connection actor's mailbox: a protoactor mailbox is
// unbounded and cannot drop the oldest report or refuse a request at the
// sender; and encoding into one buffer here costs no allocation per frame.
type outQueue struct {
	mu       sync.Mutex
	buf      []byte
	frames   []frameMeta
	live     int // bytes of frames not dropped
	inflight int // bytes the writer goroutine is writing: memory too
	dead     int // bytes of dropped frames still in buf
	scan     int // frames before this index hold no droppable report
	closed   bool
	writing  bool // the writer goroutine or an inline sender owns the socket
	dropping bool // reports were dropped since the backlog last went down
	wake     chan struct{}
	// writeStart is when the socket was last taken for a write; roomWait,
	// when not nil, is closed at the next write's end (see awaitRoom).
	writeStart int64
	roomWait   chan struct{}
	// direct writes without blocking (nil when the link cannot, as with
	// TLS); inline is the buffer of whoever writes inline.
	direct     func([]byte) (int, error)
	inline     []byte
	inlineUsed bool  // an inline write since the writer's last idle tick
	lastInline int64 // nanotime of the last inline write
	soft       int
	hard       int
	maxFrame   int
	// budget is the node's (nil: none); charged what this queue counts
	// against it, kept equal to live+inflight by sync. overBudget closes
	// the link when the node's budget makes it pay (see relieve).
	budget          *Budget
	charged         atomic.Int64
	overBudget      func(reason string)
	reportsDropped  atomic.Uint64
	requestsRefused atomic.Uint64
	framesOut       atomic.Uint64
	bytesOut        atomic.Uint64
}

// A writer keeps its spare buffer and the frames list between batches,
// and a sender the inline buffer, when they are this small; larger ones
// only while they keep being used (see run).
const (
	spareKeep  = 64 << 10
	framesKeep = 1024
	inlineKeep = 4 << 10
)

// roomy reports, locked, whether the queue holds more room than an idle
// link needs.
func (q *outQueue) roomy() bool {
	return cap(q.buf) > spareKeep || cap(q.frames) > framesKeep || cap(q.inline) > inlineKeep
}

func newOutQueue(soft, hard, maxFrame int, budget *Budget) *outQueue {
	q := &outQueue{wake: make(chan struct{}, 1), soft: soft, hard: hard, maxFrame: maxFrame, budget: budget}
	if budget != nil {
		budget.addQueue(q)
	}
	return q
}

func classOf(k registry.Kind) frameClass {
	switch k {
	case registry.KindReport:
		return classReport
	case registry.KindRequest, registry.KindMessage:
		return classRequest
	}
	return classControl
}

// pushEnvelope encodes e into the queue.
func (q *outQueue) pushEnvelope(e *registry.Envelope) error {
	body := bodySize(e)
	n := headerLen(body) + body
	if n > q.maxFrame {
		return registry.Fail(registry.CodePayloadTooLarge, registry.CodePayloadTooLarge.String(),
			"an envelope of "+itoa(n)+" bytes is over the link's frame limit of "+itoa(q.maxFrame))
	}
	q.mu.Lock()
	err := q.makeRoom(n, classOf(e.Kind))
	if err != nil && err != errDroppedOlder {
		q.mu.Unlock()
		return err
	}
	if q.idle() {
		b := appendEnvelopeSized(q.inline[:0], e, body)
		q.writeInline(b)
		return err
	}
	off := len(q.buf)
	q.buf = appendEnvelopeSized(q.buf, e, body)
	q.commit(off, classOf(e.Kind))
	return err
}

// idle reports, locked, whether nothing is queued or being written, and
// if so takes the socket for an inline write: the sender writes its frame
// itself, without waking the writer goroutine. On a quiet link that saves
// a goroutine hand-off per frame, which is most of a hop's latency.
// Under load the queue is rarely empty and frames batch as usual.
//
// A sender that wrote inline moments ago is in a burst: its next frames
// go through the queue, so the writer goroutine batches them, rather than
// costing a system call each.
func (q *outQueue) idle() bool {
	if q.direct == nil || q.writing || q.closed || len(q.buf) != 0 {
		return false
	}
	now := nanotime()
	if now-q.lastInline < inlineQuiet {
		return false
	}
	q.lastInline = now
	q.writing, q.writeStart = true, now
	return true
}

// inlineQuiet is how long a link must have been quiet for a sender to
// write inline: longer than the gap between frames of a busy sender,
// shorter than a request/reply round trip.
const inlineQuiet = int64(30 * time.Microsecond)

var clockStart = time.Now()

// nanotime is a monotonic clock reading.
func nanotime() int64 { return int64(time.Since(clockStart)) }

// writeInline writes b without blocking, called unlocked after idle took
// the socket; what the socket does not take goes to the front of the
// queue for the writer goroutine.
func (q *outQueue) writeInline(b []byte) {
	// Room grown past inlineKeep: wake the writer, which gives it back
	// once the link is quiet (run).
	roomy := cap(b) > inlineKeep && cap(q.inline) <= inlineKeep
	q.inline, q.inlineUsed = b, true
	q.mu.Unlock()
	n, err := q.direct(b)
	q.mu.Lock()
	q.writing = false
	q.roomFreed()
	if n == len(b) {
		q.framesOut.Add(1)
	}
	if n > 0 {
		q.bytesOut.Add(uint64(n))
	}
	if n < len(b) && !q.closed {
		// The rest precedes whatever others queued meanwhile. A partial
		// frame is never dropped.
		//
		// It moves in place: the queue's buffer mostly has the room, and
		// a publisher that outruns its link meets a full socket often (a
		// fresh buffer each time, regrown by every append after it, was
		// a fifth of what the pub benchmark allocated).
		rest, queued := b[n:], len(q.buf)
		q.buf = slices.Grow(q.buf, len(rest))[:queued+len(rest)]
		copy(q.buf[len(rest):], q.buf[:queued])
		copy(q.buf, rest)
		for i := range q.frames {
			q.frames[i].off += len(rest)
		}
		q.frames = slices.Insert(q.frames, 0, frameMeta{off: 0, n: len(rest), class: classControl})
		q.live += len(rest)
		q.scan = 0
		q.sync()
	}
	_ = err // a failed socket fails the writer goroutine's next write too
	wake := len(q.buf) > 0 || q.closed || roomy
	q.mu.Unlock()
	if wake {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// push appends an encoded frame.
func (q *outQueue) push(frame []byte, class frameClass) error {
	q.mu.Lock()
	err := q.makeRoom(len(frame), class)
	if err != nil && err != errDroppedOlder {
		q.mu.Unlock()
		return err
	}
	off := len(q.buf)
	q.buf = append(q.buf, frame...)
	q.commit(off, class)
	return nil
}

// pushSpan appends frames that lie back to back in span, described by
// metas (offsets relative to span), under one lock: a relay forwards the
// run of envelopes one read brought in as a single copy. When the span
// does not fit under the soft limit it falls back to frame by frame, so
// the drop policy applies to each.
func (q *outQueue) pushSpan(span []byte, metas []frameMeta) (failed []spanError) {
	q.mu.Lock()
	if q.closed || q.live+q.inflight >= q.soft || (q.budget != nil && !q.budget.admitQueued(q, len(span))) {
		q.mu.Unlock()
		for i, m := range metas {
			if err := q.push(span[m.off:m.off+m.n], m.class); err != nil {
				failed = append(failed, spanError{i, err})
			}
		}
		return failed
	}
	if q.idle() {
		q.writeInline(append(q.inline[:0], span...))
		return nil
	}
	base := len(q.buf)
	q.buf = append(q.buf, span...)
	for _, m := range metas {
		m.off += base
		q.frames = append(q.frames, m)
	}
	q.live += len(span)
	q.sync()
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// queuedBytes returns the bytes waiting or being written, for the console.
func (q *outQueue) queuedBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(q.live + q.inflight)
}

// spanError is a frame of a span that could not be queued.
type spanError struct {
	index int
	err   error
}

// commit records the frame appended at off, unlocks and wakes the writer.
func (q *outQueue) commit(off int, class frameClass) {
	n := len(q.buf) - off
	q.frames = append(q.frames, frameMeta{off: off, n: n, class: class})
	q.live += n
	q.sync()
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// makeRoom applies the limits for a frame of n bytes. Called locked.
// A request or report fits while what waits is under the soft limit (a
// request also not while reports are being dropped); past it, older
// reports are dropped to make room for a report, and requests are
// refused. Other frames are kept up to the hard limit. The node's budget
// can make the queue behave as if past its soft limit (admitQueued).
func (q *outQueue) makeRoom(n int, class frameClass) error {
	if q.closed {
		return errQueueClosed
	}
	used := q.live + q.inflight
	if class == classControl {
		if used+n > q.hard {
			return errHardLimit
		}
		if q.budget != nil && !q.budget.admitQueued(q, n) {
			return errOverBudget // the node is out of room and this link holds the most
		}
		return nil
	}
	inBudget := q.budget == nil || q.budget.admitQueued(q, n)
	if used < q.soft && inBudget && !(q.dropping && class == classRequest) {
		return nil
	}
	switch class {
	case classRequest:
		// Also while reports are being dropped: a small request could
		// fit the room one dropped report left, and then wait behind the
		// backlog of a peer that is not reading until its deadline.
		q.requestsRefused.Add(1)
		return errOverloaded
	default: // classReport
		q.dropping = true
		if !inBudget {
			q.dropOldestReports(used) // the node is out of room: all older ones
		} else {
			q.dropOldestReports(used - q.soft + 1)
		}
		if q.live+q.inflight >= q.soft || (!inBudget && q.live+q.inflight > 0) {
			q.reportsDropped.Add(1) // nothing older to drop: drop this one
			return errOverloaded
		}
		return errDroppedOlder
	}
}

// dropOldestReports marks reports dropped, oldest first, until need
// bytes are freed or none is left.
func (q *outQueue) dropOldestReports(need int) {
	for i := q.scan; i < len(q.frames) && need > 0; i++ {
		f := &q.frames[i]
		if f.dropped || f.class != classReport {
			if i == q.scan {
				q.scan++
			}
			continue
		}
		f.dropped = true
		q.live -= f.n
		q.dead += f.n
		need -= f.n
		q.reportsDropped.Add(1)
	}
	q.sync()
	q.roomFreed()
	if q.dead > 1<<16 && q.dead > len(q.buf)/2 {
		q.compact()
	}
}

// compact removes dropped frames from the buffer.
func (q *outQueue) compact() {
	w, kept := 0, q.frames[:0]
	for _, f := range q.frames {
		if f.dropped {
			continue
		}
		copy(q.buf[w:], q.buf[f.off:f.off+f.n])
		f.off = w
		w += f.n
		kept = append(kept, f)
	}
	q.buf, q.frames, q.dead, q.scan = q.buf[:w], kept, 0, 0
}

// run writes queued frames to w until the queue is closed or a write
// fails; onError is called with the failure.
func (q *outQueue) run(w io.Writer, onError func(error)) {
	var spare []byte
	var spareFrames []frameMeta
	var bufs net.Buffers
	// Room a burst grew is given back once the link is quiet: while the
	// writer or the queue holds more than the keep sizes above, a
	// timer ticks every idleRelease, and at each tick what no batch since
	// the previous one needed a quarter of is let go, and the inline
	// buffer if no inline write used it. A busy link keeps its room
	// (regrowing it every swap costs more); a link gone quiet or down to
	// small batches holds little after a second or two.
	idle := time.NewTimer(idleRelease)
	idle.Stop()
	defer idle.Stop()
	var ticking, queueRoom bool
	var peak, peakFrames int // the largest batch since the last tick
	for {
		if !ticking && (cap(spare) > spareKeep || cap(spareFrames) > framesKeep || queueRoom) {
			idle.Reset(idleRelease)
			ticking, peak, peakFrames = true, 0, 0
		}
		if ticking {
			select {
			case <-q.wake:
			case <-idle.C:
				ticking = false
				if cap(spare) > spareKeep && 4*peak < cap(spare) {
					spare = nil
				}
				if cap(spareFrames) > framesKeep && 4*peakFrames < cap(spareFrames) {
					spareFrames = nil
				}
				q.mu.Lock()
				if len(q.buf) == 0 && cap(q.buf) > spareKeep && 4*peak < cap(q.buf) {
					q.buf = nil
				}
				if len(q.frames) == 0 && cap(q.frames) > framesKeep && 4*peakFrames < cap(q.frames) {
					q.frames = nil
				}
				if !q.writing && !q.inlineUsed && cap(q.inline) > inlineKeep {
					q.inline = nil
				}
				q.inlineUsed = false
				queueRoom = q.roomy()
				q.mu.Unlock()
				continue
			}
		} else {
			<-q.wake
		}
		// Let the senders that are ready run first: woken by the first
		// frame, the writer would otherwise run right after its sender
		// (the scheduler favours a goroutine its waker readied) and write
		// that frame alone. Yielding once makes the frames of a burst of
		// callers share one write (at 64 requests in flight, 0.3 write
		// calls per request instead of 1.1) and costs nothing when no one
		// else is ready.
		runtime.Gosched()
		q.mu.Lock()
		queueRoom = q.roomy()
		if q.writing {
			q.mu.Unlock() // an inline sender wakes us when it is done
			continue
		}
		if len(q.buf) == 0 {
			closed := q.closed
			q.mu.Unlock()
			if closed {
				return
			}
			continue
		}
		buf, frames, dead := q.buf, q.frames, q.dead
		q.buf, q.frames = spare[:0], spareFrames[:0]
		q.live, q.dead, q.scan = 0, 0, 0
		q.inflight = len(buf) - dead
		q.writing, q.writeStart = true, nanotime()
		q.mu.Unlock()

		var err error
		count := len(frames)
		if dead == 0 {
			_, err = w.Write(buf)
		} else {
			bufs = bufs[:0]
			count = 0
			for _, f := range frames {
				if !f.dropped {
					bufs = append(bufs, buf[f.off:f.off+f.n])
					count++
				}
			}
			out := bufs // WriteTo consumes the slice it is called on
			_, err = out.WriteTo(w)
		}
		q.mu.Lock()
		q.writing, q.inflight = false, 0
		q.sync()
		q.roomFreed()
		if err == nil && q.live < q.soft/2 {
			q.dropping = false // the peer reads again and the backlog went down
		}
		q.mu.Unlock()
		if err != nil {
			onError(err)
			return
		}
		q.framesOut.Add(uint64(count))
		q.bytesOut.Add(uint64(len(buf) - dead))
		peak, peakFrames = max(peak, len(buf)), max(peakFrames, len(frames))
		// Keep the buffer for the next swap (the ticks above let go of
		// room nobody uses), unless a burst past the limits made it huge.
		if cap(buf) > 2*q.soft+q.maxFrame {
			buf, frames = nil, nil
		}
		spare, spareFrames = buf, frames
		q.mu.Lock()
		more := len(q.buf) > 0 || q.closed
		queueRoom = q.roomy()
		q.mu.Unlock()
		if more {
			select {
			case q.wake <- struct{}{}:
			default:
			}
		}
	}
}

// close stops the queue. With flush the writer writes what is pending
// first; without, the pending frames are returned for the caller to
// account for (failed back or counted as dropped).
func (q *outQueue) close(flush bool) (pending []byte, frames []frameMeta) {
	q.mu.Lock()
	q.closed = true
	q.roomFreed()
	if !flush {
		pending, frames = q.buf, q.frames
		q.buf, q.frames, q.live, q.dead = nil, nil, 0, 0
		q.sync()
		if q.budget != nil {
			q.budget.removeQueue(q)
		}
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return pending, frames
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
