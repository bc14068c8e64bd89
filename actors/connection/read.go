package connection

// The reader goroutine: the handshake, then frames split, checked and
// routed with no actor hop — to a local service, to the call waiting for
// it, or on to the next link as bytes.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/netsvc-go/netsvc/actors/registry"
)

// read is the reader goroutine: it runs the handshake, then decodes
// frames until the socket fails or the peer misbehaves, and tells the
// actor why. Envelopes go straight to the runtime (or on to the next
// link), announcements to the registry: no actor hop on the data path.
func (c *Conn) read(root *actor.RootContext, self *actor.PID) {
	err := c.handshake(root, self)
	if err == nil {
		rd := frameReader{c: c, interned: internTable{}}
		info := c.Info()
		rd.betweenServers = info.LocalRole == registry.RoleServer && info.PeerRole == registry.RoleServer
		err = rd.loop()
		rd.release()
	}
	close(c.readerExited)
	root.Send(self, &readerDone{err: err, rejected: IsRefusal(err)})
}

// handshake runs the link's side of the handshake (see Handshake): its
// frames go out through the queue, the peer's are read one by one.
func (c *Conn) handshake(root *actor.RootContext, self *actor.PID) error {
	timeout := c.p.Config.HandshakeTimeout
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	send := func(frame []byte) error { return c.q.push(frame, classControl) }
	peer, err := handshake(send, &frameSource{r: c.nc}, HandshakeConfig{
		Local: c.p.Local, Dialer: c.p.Dialed, Tokens: c.p.Tokens, Check: c.p.Check,
	})
	if err != nil {
		if isTLSAlert(err) {
			// With TLS 1.3 a server checks the client's certificate after
			// the client's side of the handshake is done: its refusal
			// arrives as an alert on the first read. Retrying will not help.
			err = fmt.Errorf("%w: TLS handshake failed: %w", errRejected, err)
		}
		return timeoutReason(err, timeout)
	}
	c.nc.SetReadDeadline(time.Time{})
	info := c.Info()
	info.PeerProcess, info.PeerNode, info.PeerRole = peer.Process, peer.Node, peer.Role
	c.setInfo(info)
	root.Send(self, &helloOK{h: peer})
	return nil
}

// isTLSAlert reports whether err is a TLS alert the peer sent ("remote
// error: tls: bad certificate").
func isTLSAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

type frameReader struct {
	c        *Conn
	buf      []byte
	interned internTable
	lastFrom registry.ProcessID

	// Routes looked up since the runtime's routes last changed.
	routeGen uint64
	routes   map[registry.ProcessID]*Conn

	// The run of frames being relayed to one link: rd.buf[relayStart:relayEnd].
	relayTo              *Conn
	relayStart, relayEnd int
	relayMetas           []frameMeta
	// The end of this read's budget for waiting on full links it relays
	// to (0 until a wait begins).
	holdUntil int64

	// The run of frames for one local service: rd.buf[encStart:encEnd];
	// encDroppable while all of them are reports or one-way messages.
	encTo            uint64
	encStart, encEnd int
	encDroppable     bool

	// Responses for this process, delivered together after each read.
	// Answers (responses and failures) are decoded into answers, reused
	// after each delivery: completing a call keeps none of an answer's
	// envelope, only its payload, which lives in data.
	local   []*registry.Envelope
	answers []registry.Envelope
	slots   []registry.Envelope
	data    []byte

	// betweenServers is set on a link between two servers: the node's
	// bounds refuse what it brings but never close it (rule 36).
	betweenServers bool
	// incomplete is what the frame still arriving is charged against the
	// node's budget; partialSince when its first bytes came, partialAt
	// how many bytes of whole frames the stream had carried before it.
	incomplete   int64
	partialSince int64
	partialAt    uint64
	announced    announced
}

// The read buffer starts small and doubles, up to readBufMax, while
// reads fill it (a burst: fewer, larger reads); it goes back to
// readBufMin after quietReads reads in a row that would have fit that,
// and when the link has been idle for idleRelease. An idle link then
// holds readBufMin bytes for reading, not the room its busiest moment
// needed; a frame larger than readBufMax gets a buffer of its own size,
// given back once it is handled.
const (
	readBufMin  = 4 << 10
	readBufMax  = 256 << 10
	quietReads  = 64
	idleRelease = time.Second
)

func (rd *frameReader) loop() error {
	c := rd.c
	maxFrame := c.p.Config.MaxFrame
	frameTimeout := int64(c.p.Config.FrameTimeout)
	rd.buf = make([]byte, readBufMin)
	start, end := 0, 0
	var frames uint64   // counted per read, not per frame
	var bytes int       // the same
	var consumed uint64 // bytes of whole frames the stream carried
	var filled bool     // the last read took all the room there was
	var quiet int       // reads in a row that readBufMin would have held
	var deadline int64  // the read deadline in force (0: none)
	lastRead := nanotime()
	canDeadline := true // until the connection turns a deadline down
	for {
		for start < end {
			kind, body, n, err := splitFrame(rd.buf[start:end], maxFrame)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			frame := rd.buf[start : start+n]
			off := start
			start += n
			frames++
			bytes += n
			if err := rd.frame(kind, off, frame, body); err != nil {
				rd.flush()
				return err
			}
		}
		c.framesIn.Add(frames)
		c.bytesIn.Add(uint64(bytes))
		consumed += uint64(bytes)
		frames, bytes = 0, 0
		// Hand on what this read brought before the buffer moves.
		rd.flush()
		rd.holdUntil = 0
		if start == end {
			start, end = 0, 0
			switch {
			case filled && len(rd.buf) < readBufMax:
				rd.buf = make([]byte, 2*len(rd.buf)) // a burst: read more at a time
			case len(rd.buf) > 4*readBufMax:
				rd.buf = make([]byte, readBufMax) // give back what a big frame took
			case quiet >= quietReads && len(rd.buf) > readBufMin:
				rd.buf = make([]byte, readBufMin) // light traffic: give the room back
			}
		} else if rd.partialAt != consumed || rd.partialSince == 0 {
			rd.partialAt, rd.partialSince = consumed, lastRead // a new frame began
		}
		if err := rd.chargeIncomplete(int64(end - start)); err != nil {
			return err
		}
		if end == len(rd.buf) {
			// A frame longer than the space left: move it to the front,
			// and grow the buffer when it cannot fit at all, or, in a
			// burst, to read more at a time.
			need := end - start + 1
			if length, ok := frameLength(rd.buf[start:end]); ok {
				need = length
			}
			if len(rd.buf) < readBufMax {
				need = max(need, 2*len(rd.buf))
			}
			if start > 0 {
				copy(rd.buf, rd.buf[start:end])
				end -= start
				start = 0
			}
			if need > len(rd.buf) {
				// Doubling toward a large frame rather than taking its
				// size at once: a peer that announces 16 MiB and sends
				// little makes the reader hold about twice what it sent.
				nb := make([]byte, min(need, 2*len(rd.buf)))
				copy(nb, rd.buf[:end])
				rd.buf = nb
			}
		}
		// One read deadline serves two ends: a frame must arrive whole
		// within frameTimeout of its first bytes, and a link holding more
		// than an idle one needs gives it back after idleRelease without
		// traffic. It is set lazily, and looked at when it fires, so a
		// busy link rarely touches it (the call also deepens the stack
		// this goroutine keeps, which a link that never needs it should
		// not pay for).
		if deadline == 0 && canDeadline {
			want := int64(0)
			if start < end {
				want = rd.partialSince + frameTimeout
			} else if len(rd.buf) > readBufMin || rd.data != nil || rd.slots != nil || rd.routes != nil || rd.answers != nil {
				want = max(lastRead+int64(idleRelease), nanotime()+int64(idleRelease/4))
			}
			if want != 0 {
				canDeadline = c.nc.SetReadDeadline(clockStart.Add(time.Duration(want))) == nil
				if canDeadline {
					deadline = want
				}
			}
		}
		room := len(rd.buf) - end
		n, err := c.nc.Read(rd.buf[end:])
		filled = n == room
		if n < readBufMin {
			quiet++
		} else {
			quiet = 0
		}
		if n > 0 {
			end += n
			lastRead = nanotime()
			c.lastRx.Store(time.Now().UnixNano())
		}
		if err != nil {
			if n > 0 {
				continue // take the frames that came with the error first
			}
			if deadline != 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				c.nc.SetReadDeadline(time.Time{})
				deadline = 0
				now := nanotime()
				if start < end && now-rd.partialSince >= frameTimeout {
					return fmt.Errorf("a frame did not arrive whole within %v (%d bytes of it came)", c.p.Config.FrameTimeout, end-start)
				}
				if start == end && now-lastRead >= int64(idleRelease) {
					rd.idle()
				}
				continue
			}
			return err
		}
	}
}

// chargeIncomplete charges the node's budget with the bytes of the frame
// still arriving (rule 36). Past the node's bound the link is
// closed, unless it links two servers.
func (rd *frameReader) chargeIncomplete(n int64) error {
	if n == rd.incomplete {
		return nil
	}
	b := rd.c.p.Budget
	if !b.chargeIncomplete(rd.incomplete, n, rd.betweenServers) {
		return fmt.Errorf("the node's budget for frames still arriving (%d bytes) is spent", b.limits.Incomplete)
	}
	rd.incomplete = n
	return nil
}

// release gives back what the link held against the node's budget.
func (rd *frameReader) release() {
	b := rd.c.p.Budget
	b.chargeIncomplete(rd.incomplete, 0, true)
	rd.incomplete = 0
	a := &rd.announced
	b.chargeBindings(-int64(len(a.bindings)+len(a.processes)), true)
	*a = announced{}
}

// idle gives back what a quiet link does not need: a large read buffer,
// the rest of the chunks envelopes are decoded into (envelopes still in
// use keep their own chunk), the cached routes.
func (rd *frameReader) idle() {
	if len(rd.buf) > readBufMin {
		rd.buf = make([]byte, readBufMin)
	}
	rd.data, rd.slots, rd.routes, rd.answers, rd.local = nil, nil, nil, nil, nil
	rd.relayMetas = nil
}

// maxHello bounds the handshake's frames: they are small.
const maxHello = 64 << 10

// frameLength returns the full size of the frame at the front of b when
// its length prefix is complete.
func frameLength(b []byte) (int, bool) {
	length, n := binary.Uvarint(b)
	if n <= 0 || length > 1<<40 {
		return 0, false
	}
	return n + int(length), true
}

func (rd *frameReader) frame(kind FrameKind, off int, frame, body []byte) error {
	c := rd.c
	switch kind {
	case FrameEnvelope:
		return rd.envelope(off, frame, body)
	case FrameAnnounce, FrameGroup:
		var ch registry.Change
		var err error
		if kind == FrameAnnounce {
			ch, err = DecodeAnnounce(body)
		} else {
			ch, err = DecodeGroup(body)
		}
		if err != nil {
			return err
		}
		// Envelopes read before an announcement are handed on first: a
		// withdrawal must not overtake the last reports of a publisher.
		rd.flush()
		if c.State() == StateClosed {
			return errLinkClosed // imports past the close would outlive it
		}
		ok, err := rd.admit(ch)
		if err != nil {
			_ = c.q.push(AppendReason(nil, FrameBye, err.Error()), classControl)
			return err
		}
		if ok {
			c.rt.Import(c, ch)
		}
	case FrameSynced:
		// Through the connection actor, so the exchange hears it after
		// the handshake; the imports before it are queued at the
		// registry already.
		c.rt.ActorSystem().Root.Send(c.pid.Load(), &PeerSynced{Conn: c})
	case FramePing:
		_ = c.q.push(AppendPing(nil, FramePong, 0), classControl)
	case FramePong:
	case FrameBye:
		reason, _ := DecodeReason(body)
		return fmt.Errorf("%w: %s", errPeerBye, reason)
	case FrameReject:
		reason, _ := DecodeReason(body)
		return fmt.Errorf("%w: %s", errRejected, reason)
	case FrameMove:
		servers, err := DecodeMove(body)
		if err != nil {
			return err
		}
		c.rt.ActorSystem().Root.Send(c.pid.Load(), &Moved{Conn: c, Servers: servers})
	default:
		return fmt.Errorf("unexpected %s frame", kind)
	}
	return nil
}

// envelope routes one envelope frame: to this process, or, for a relay,
// as raw bytes onto the link toward its destination.
func (rd *frameReader) envelope(off int, frame, body []byte) error {
	c := rd.c
	kind, hops, to, from, ok := envelopeRoute(body)
	if !ok {
		_, err := DecodeEnvelope(body, nil)
		if err == nil {
			err = errors.New("bad envelope header")
		}
		return err
	}
	if from != rd.lastFrom {
		c.rt.LearnRoute(from, c)
		rd.lastFrom = from
	}
	local := to.Process == c.rt.ProcessID()
	if local && kind != registry.KindResponse && kind != registry.KindFailure && kind != registry.KindCancel {
		// Handed over still encoded, so check it whole now: bad input
		// closes the link (rule 26) rather than reaching a registry.
		if err := checkEnvelope(body); err != nil {
			return err
		}
		if to.ID != rd.encTo || off != rd.encEnd || rd.encEnd == rd.encStart {
			rd.flushEncoded()
			rd.encTo, rd.encStart, rd.encDroppable = to.ID, off, true
		}
		rd.encDroppable = rd.encDroppable && (kind == registry.KindReport || kind == registry.KindMessage)
		rd.encEnd = off + len(frame)
		return nil
	}
	if !local {
		if hops >= maxRelayHops {
			c.log.Warn("dropping envelope that went round too many links", "to", to, "from", from)
			return nil
		}
		if next := rd.route(to.Process); next != nil && next != c {
			body[envHopsOffset]++
			rd.relay(next, off, len(frame), classOf(kind))
			return nil
		}
	}
	var e *registry.Envelope
	if local && (kind == registry.KindResponse || kind == registry.KindFailure) {
		e = rd.answerSlot()
	} else {
		e = rd.slot()
	}
	if err := decodeEnvelopeInto(e, body, rd.interned, rd.alloc); err != nil {
		return err
	}
	if !local {
		c.rt.Deliver(e, c) // no route on: the runtime answers a request with why
		return nil
	}
	rd.local = append(rd.local, e)
	return nil
}

// route returns the link toward process p, caching answers while the
// runtime's routes stay unchanged.
func (rd *frameReader) route(p registry.ProcessID) *Conn {
	rt := rd.c.rt
	if g := rt.RouteGeneration(); g != rd.routeGen || rd.routes == nil || len(rd.routes) > 1024 {
		rd.routes = map[registry.ProcessID]*Conn{}
		rd.routeGen = g
	}
	next, ok := rd.routes[p]
	if !ok {
		next, _ = rt.RouteTo(p).(*Conn)
		rd.routes[p] = next
	}
	return next
}

// relay adds a frame to the run going to next, extending it when the
// frame follows the previous one in the buffer.
func (rd *frameReader) relay(next *Conn, off, n int, class frameClass) {
	if rd.relayTo != next || off != rd.relayEnd {
		rd.flushRelay()
		rd.relayTo, rd.relayStart, rd.relayEnd = next, off, off
	}
	rd.relayMetas = append(rd.relayMetas, frameMeta{off: off - rd.relayStart, n: n, class: class})
	rd.relayEnd = off + n
}

func (rd *frameReader) flushRelay() {
	next := rd.relayTo
	if next == nil {
		return
	}
	// In pieces of at most half the next link's soft limit, each waiting
	// for room there (awaitRoom): a read's worth of frames can be more
	// than the whole queue holds.
	span, metas := rd.buf[rd.relayStart:rd.relayEnd], rd.relayMetas
	limit := next.q.soft / 2
	for base := 0; len(metas) > 0; {
		n, size := 0, 0
		for n < len(metas) && (n == 0 || size+metas[n].n <= limit) {
			metas[n].off -= base
			size += metas[n].n
			n++
		}
		piece, pieceMetas := span[base:base+size], metas[:n]
		next.q.awaitRoom(size, &rd.holdUntil)
		for _, f := range next.q.pushSpan(piece, pieceMetas) {
			rd.relayFailed(next, piece, pieceMetas[f.index], f.err)
		}
		base += size
		metas = metas[n:]
	}
	rd.relayTo, rd.relayMetas = nil, rd.relayMetas[:0]
}

// relayFailed answers a request that could not be relayed with the reason.
func (rd *frameReader) relayFailed(next *Conn, span []byte, m frameMeta, err error) {
	_, body, _, serr := splitFrame(span[m.off:m.off+m.n], rd.c.p.Config.MaxFrame)
	if serr != nil || len(body) == 0 {
		return
	}
	if k := registry.Kind(body[0]); m.class != classRequest {
		// An answer whose next link is closing may have another way.
		if k == registry.KindResponse || k == registry.KindFailure {
			if e, derr := DecodeEnvelope(body, nil); derr == nil {
				rd.c.rt.RouteAround(e, next)
			}
		}
		return
	}
	if e, derr := DecodeEnvelope(body, nil); derr == nil {
		if fl, ok := next.failure(err).(*registry.Failure); ok {
			fe := registry.FailureEnvelope(e, fl)
			fe.NotRun = true // it never left this process: the caller may try elsewhere
			rd.c.rt.Deliver(fe, nil)
		}
	}
}

// flushEncoded hands the current run of frames for one service to it,
// copied out of the read buffer in one piece.
func (rd *frameReader) flushEncoded() {
	if rd.encEnd == rd.encStart {
		return
	}
	span := rd.buf[rd.encStart:rd.encEnd]
	rd.encStart, rd.encEnd = 0, 0
	data := rd.alloc(len(span))
	copy(data, span)
	c := rd.c
	batch := &registry.EncodedBatch{Data: data, Decode: DecodeFrame, Droppable: rd.encDroppable, From: c}
	if !batch.Droppable {
		// It may hold requests, whose deadlines count from their arrival.
		batch.Decode = DecodeFrameAt(time.Now().UnixNano())
	}
	if c.rt.DeliverEncoded(rd.encTo, batch) {
		return
	}
	// No such service: deliver one by one, so requests are answered.
	for len(data) > 0 {
		e := &registry.Envelope{}
		rest, err := DecodeFrame(data, e)
		if err != nil {
			return
		}
		c.rt.Deliver(e, c)
		data = rest
	}
}

// flush hands on everything gathered from the current read.
func (rd *frameReader) flush() {
	rd.flushRelay()
	rd.flushEncoded()
	if len(rd.local) > 0 {
		rd.c.rt.DeliverBatch(rd.local, rd.c) // keeps neither the slice nor an answer's envelope
		clear(rd.local)
		rd.local = rd.local[:0]
		clear(rd.answers) // what they point to is the handlers' now
		rd.answers = rd.answers[:0]
	}
}

// answerSlot returns an envelope for an answer, valid until the next
// delivery.
func (rd *frameReader) answerSlot() *registry.Envelope {
	if len(rd.answers) == cap(rd.answers) {
		// Grown, not moved: the envelopes handed out still point into
		// the old array, which stays theirs until the delivery.
		rd.answers = make([]registry.Envelope, 0, max(16, 2*cap(rd.answers)))
	}
	rd.answers = rd.answers[:len(rd.answers)+1]
	return &rd.answers[len(rd.answers)-1]
}

// slot returns an envelope from a chunk, so decoding does not allocate
// one by one; a chunk is freed when its last envelope is.
func (rd *frameReader) slot() *registry.Envelope {
	if len(rd.slots) == 0 {
		rd.slots = make([]registry.Envelope, 64)
	}
	e := &rd.slots[0]
	rd.slots = rd.slots[1:]
	return e
}

// alloc returns n bytes from a shared chunk; a chunk is freed when the
// last envelope using it is.
func (rd *frameReader) alloc(n int) []byte {
	if n > 16<<10 {
		return make([]byte, n)
	}
	if len(rd.data) < n {
		rd.data = make([]byte, 64<<10)
	}
	b := rd.data[:n:n]
	rd.data = rd.data[n:]
	return b
}
