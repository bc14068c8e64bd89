package connection

// A link's Conn (the registry.Link routes go through) and its actor,
// which owns the socket's life: handshake deadline, liveness, close.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/netsvc-go/netsvc/actors/registry"
	"golang.org/x/time/rate"
)

// Config tunes a link. The zero value takes the defaults.
type Config struct {
	MaxFrame         int           // largest frame accepted or sent (DefaultMaxFrame)
	QueueSoft        int           // queued bytes past which reports drop and requests are refused (1 MiB)
	QueueHard        int           // queued bytes past which the link closes (64 MiB, at least QueueSoft plus MaxFrame)
	HandshakeTimeout time.Duration // the handshake must be done within this (5 s)
	PingInterval     time.Duration // a ping goes out this often when idle (SilenceTimeout/3)
	SilenceTimeout   time.Duration // a link silent this long is closed (15 s)
	// FrameTimeout bounds how long one frame may take to arrive once its
	// first byte has (30 s): a peer trickling a large frame a byte at a
	// time cannot hold its memory for ever.
	FrameTimeout time.Duration
	// ClientBindings bounds the service bindings a client link may
	// announce (10,000), and ClientProcesses the processes (256: its own,
	// and those a bridge brings in from another exchange group). Past
	// either the link is closed. Links between servers are bounded by the
	// node's Limits only.
	ClientBindings  int
	ClientProcesses int
	// GroupJoins bounds the service-group memberships the bindings a link
	// announced may hold (65,536). Past it a client link is closed, a
	// link between servers has the joins refused.
	GroupJoins int
}

// Defaults of Config.
const (
	DefaultFrameTimeout    = 30 * time.Second
	DefaultClientBindings  = 10_000
	DefaultClientProcesses = 256
	DefaultGroupJoins      = 65_536
)

func (c Config) withDefaults() Config {
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.QueueSoft <= 0 {
		c.QueueSoft = 1 << 20
	}
	if c.QueueHard < c.QueueSoft+c.MaxFrame {
		c.QueueHard = max(64<<20, c.QueueSoft+c.MaxFrame, 2*c.QueueSoft)
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.SilenceTimeout <= 0 {
		c.SilenceTimeout = 15 * time.Second
	}
	if c.PingInterval <= 0 || c.PingInterval >= c.SilenceTimeout {
		c.PingInterval = c.SilenceTimeout / 3
	}
	if c.FrameTimeout <= 0 {
		c.FrameTimeout = DefaultFrameTimeout
	}
	if c.ClientBindings <= 0 {
		c.ClientBindings = DefaultClientBindings
	}
	if c.ClientProcesses <= 0 {
		c.ClientProcesses = DefaultClientProcesses
	}
	if c.GroupJoins <= 0 {
		c.GroupJoins = DefaultGroupJoins
	}
	return c
}

// Params are what the exchange tells a new link.
type Params struct {
	Config   Config
	ID       string
	Local    Hello             // the hello this side sends
	Dialed   bool              // this side dialled
	Exchange *actor.PID        // told of handshakes and closes
	Check    func(Hello) error // validates the peer's hello; an error rejects it
	Tokens   []string          // shared tokens (see HandshakeConfig.Tokens)
	Budget   *Budget           // the node's limits across links (nil: a budget of the link's own)
	Logger   *slog.Logger
}

// Conn is one link: the registry.Link the registry routes through, owned
// by a connection actor. Senders call Send from any goroutine; the
// reader goroutine decodes what arrives; the writer goroutine writes.
type Conn struct {
	rt     *registry.Kernel
	nc     net.Conn
	p      Params
	q      *outQueue
	log    *slog.Logger
	since  time.Time
	pid    atomic.Pointer[actor.PID] // set when the actor starts
	peer   Hello                     // set once the peer's hello is accepted, before anyone else sees the link
	info   atomic.Pointer[registry.LinkInfo]
	state  atomic.Int32
	lastRx atomic.Int64

	framesIn, bytesIn atomic.Uint64
	// announcementsRefused counts announcements of a server peer past the
	// node's bounds; refusedLog keeps their log lines few.
	announcementsRefused atomic.Uint64
	refusedLog           rate.Sometimes

	readerExited chan struct{} // closed when the reader goroutine ends
	reason       atomic.Value  // string: why the link closed
	writerDone   chan struct{} // closed when the writer goroutine ends

	// Failures returned on the hot path, made once (callers must not
	// change them).
	congestedOnce, fullOnce sync.Once
	congested, full         *registry.Failure
}

// Link states.
const (
	StateHandshaking = iota
	StateActive
	StateClosed
)

// StateName names a link state for people.
func StateName(s int) string {
	switch s {
	case StateHandshaking:
		return "handshaking"
	case StateActive:
		return "active"
	}
	return "closed"
}

// DuplicateLink opens the reason of a link closed by the duplicate rule.
const DuplicateLink = "duplicate link"

// PeerSynced tells the exchange the peer's link-up dump has arrived.
type PeerSynced struct{ Conn *Conn }

// AppendSynced appends the frame that ends a link-up dump.
func AppendSynced(b []byte) []byte { return appendHeader(b, FrameSynced, 0) }

// Moved tells the exchange its server asked this client to move to
// other servers (the server is draining).
type Moved struct {
	Conn    *Conn
	Servers []string
}

// Handshaked tells the exchange the handshake is done: each side has
// accepted the other.
type Handshaked struct{ Conn *Conn }

// Closed tells the exchange the link is gone. Rejected is set when one
// side refused the other's hello (group, version or token): retrying
// will not help until someone changes a configuration.
type Closed struct {
	Conn      *Conn
	Reason    string
	Rejected  bool
	WasActive bool
}

// Close asks the connection actor to close the link with a reason sent
// to the peer in a bye. With Abort set, what is queued is not waited
// for (a peer that does not read would keep it for the drain timeout):
// requests are failed back and reports counted as dropped at once.
type Close struct {
	Reason string
	Abort  bool
}

// New wraps an established TCP (or TLS) connection. Spawn the actor from
// Props to start it.
func New(rt *registry.Kernel, nc net.Conn, p Params) *Conn {
	p.Config = p.Config.withDefaults()
	if p.Logger == nil {
		p.Logger = rt.Logger()
	}
	c := &Conn{rt: rt, nc: nc, p: p, since: time.Now(), writerDone: make(chan struct{}), readerExited: make(chan struct{}),
		refusedLog: rate.Sometimes{Interval: 10 * time.Second}}
	if p.Budget == nil {
		p.Budget = NewBudget(Limits{})
		c.p.Budget = p.Budget
	}
	c.q = newOutQueue(p.Config.QueueSoft, p.Config.QueueHard, p.Config.MaxFrame, p.Budget)
	c.q.overBudget = c.abort
	c.q.direct = directWriter(nc)
	c.log = p.Logger.With("link", p.ID, "remote", nc.RemoteAddr().String())
	c.lastRx.Store(time.Now().UnixNano())
	c.setInfo(registry.LinkInfo{ID: p.ID, ExchangeGroup: p.Local.Group, LocalRole: p.Local.Role, PeerAddress: nc.RemoteAddr().String()})
	return c
}

// Props returns the props of the connection actor; it shows in the
// runtime's tree as a "connection".
func (c *Conn) Props() *actor.Props {
	return c.rt.Props(registry.KindConnection, c.p.ID, func() actor.Actor { return &connActor{c: c} }, c.Detail)
}

// Send queues an envelope for the peer (registry.Link).
func (c *Conn) Send(e *registry.Envelope) error {
	err := c.q.pushEnvelope(e)
	if err == nil {
		return nil
	}
	return c.failure(err)
}

// AwaitRoom waits, for a synchronous caller whose request the link
// refused as overloaded, until a request fits again (registry.RoomWaiter).
func (c *Conn) AwaitRoom(until time.Time) bool { return c.q.awaitCallerRoom(until) }

func (c *Conn) failure(err error) error {
	switch {
	case err == errDroppedOlder:
		// Made once: a congested publisher meets this on every report.
		c.congestedOnce.Do(func() {
			c.congested = &registry.Failure{Code: registry.CodeOverloaded, Description: registry.CodeOverloaded.String(), Origin: registry.OriginRuntime,
				Details: "link " + c.p.ID + " to " + c.Info().PeerNode + " is congested: older reports were dropped to queue new ones"}
		})
		return c.congested
	case err == errOverloaded:
		c.fullOnce.Do(func() {
			c.full = &registry.Failure{Code: registry.CodeOverloaded, Description: registry.CodeOverloaded.String(), Origin: registry.OriginRuntime,
				Details: "the outbound queue of link " + c.p.ID + " to " + c.Info().PeerNode + " is full"}
		})
		return c.full
	case errors.Is(err, errQueueClosed):
		return &registry.Failure{Code: registry.CodeLinkLost, Description: registry.CodeLinkLost.String(), Origin: registry.OriginRuntime,
			Details: "link " + c.p.ID + " to " + c.Info().PeerNode + " is closed"}
	case errors.Is(err, errHardLimit), errors.Is(err, errOverBudget):
		c.abort(err.Error())
		return &registry.Failure{Code: registry.CodeOverloaded, Description: registry.CodeOverloaded.String(), Origin: registry.OriginRuntime, Details: err.Error()}
	}
	return err
}

// SendFrame queues an encoded control frame (announcements).
func (c *Conn) SendFrame(frame []byte) error {
	if err := c.q.push(frame, classControl); err != nil {
		return c.failure(err)
	}
	return nil
}

// Info describes the link (registry.Link).
func (c *Conn) Info() registry.LinkInfo { return *c.info.Load() }

func (c *Conn) setInfo(i registry.LinkInfo) { c.info.Store(&i) }

// Peer returns the peer's hello; valid once the link is active.
func (c *Conn) Peer() Hello { return c.peer }

// Dialed reports whether this side dialled.
func (c *Conn) Dialed() bool { return c.p.Dialed }

// ID returns the link's id.
func (c *Conn) ID() string { return c.p.ID }

// PID returns the connection actor's pid.
func (c *Conn) PID() *actor.PID { return c.pid.Load() }

// State returns the link's state.
func (c *Conn) State() int { return int(c.state.Load()) }

// Shutdown closes the link from any goroutine.
func (c *Conn) Shutdown(reason string) {
	if pid := c.pid.Load(); pid != nil {
		c.rt.ActorSystem().Root.Send(pid, &Close{Reason: reason})
	} else {
		c.nc.Close()
	}
}

// CloseNow closes the link from any goroutine without waiting for the
// peer: for a peer the cluster declared dead, which would only make a
// graceful close wait its bounds.
func (c *Conn) CloseNow(reason string) { c.abort(reason) }

// abort closes the link from any goroutine without draining its queue.
func (c *Conn) abort(reason string) {
	if pid := c.pid.Load(); pid != nil {
		c.rt.ActorSystem().Root.Send(pid, &Close{Reason: reason, Abort: true})
		// The write under way is stuck on a peer that does not read, and
		// holds what the node is short of: end it now rather than when
		// the actor gets to the Close (its reason is queued first, so it
		// is the one the link goes down with).
		c.nc.SetWriteDeadline(time.Now())
	} else {
		c.nc.Close()
	}
}

// Stats are a link's counters.
type Stats struct {
	FramesIn, BytesIn, FramesOut, BytesOut uint64
	ReportsDropped, RequestsRefused        uint64
	AnnouncementsRefused                   uint64
	Queued                                 int64
}

// Stats returns the link's counters.
func (c *Conn) Stats() Stats {
	return Stats{
		FramesIn: c.framesIn.Load(), BytesIn: c.bytesIn.Load(),
		FramesOut: c.q.framesOut.Load(), BytesOut: c.q.bytesOut.Load(),
		ReportsDropped: c.q.reportsDropped.Load(), RequestsRefused: c.q.requestsRefused.Load(),
		AnnouncementsRefused: c.announcementsRefused.Load(), Queued: c.q.queuedBytes(),
	}
}

// Since returns when the link was opened.
func (c *Conn) Since() time.Time { return c.since }

// Reason returns why the link closed, once it has.
func (c *Conn) Reason() string {
	s, _ := c.reason.Load().(string)
	return s
}

// Detail is what the console shows for the connection actor.
func (c *Conn) Detail() map[string]any {
	s := c.Stats()
	return map[string]any{
		"state": StateName(c.State()), "peer": c.Info().PeerNode, "peer_process": c.Info().PeerProcess.String(),
		"remote": c.Info().PeerAddress, "group": c.Info().ExchangeGroup, "frames_in": s.FramesIn, "frames_out": s.FramesOut,
		"bytes_in": s.BytesIn, "bytes_out": s.BytesOut, "dropped": s.ReportsDropped, "refused": s.RequestsRefused, "queued": s.Queued,
	}
}

// --- the actor ---

type connActor struct {
	c         *Conn
	handshake *time.Timer
	ping      *time.Timer
	closing   bool
	aborting  bool // Close{Abort}: no grace for the write under way
}

type (
	pingTick      struct{}
	handshakeTick struct{}
	readerDone    struct {
		err      error
		rejected bool
	}
	helloOK struct{ h Hello }
)

func (a *connActor) Receive(ctx actor.Context) {
	c := a.c
	switch m := ctx.Message().(type) {
	case *actor.Started:
		c.pid.Store(ctx.Self())
		root, self := ctx.ActorSystem().Root, ctx.Self()
		go func() {
			defer close(c.writerDone)
			c.q.run(c.nc, func(err error) { root.Send(self, &readerDone{err: fmt.Errorf("write: %w", err)}) })
		}()
		go c.read(root, self)
		a.handshake = time.AfterFunc(c.p.Config.HandshakeTimeout, func() { root.Send(self, handshakeTick{}) })
		a.ping = time.AfterFunc(c.p.Config.PingInterval, func() { root.Send(self, pingTick{}) })
	case *helloOK:
		c.peer = m.h
		a.handshake.Stop()
		ctx.Send(c.p.Exchange, &Handshaked{Conn: c})
	case *PeerSynced:
		ctx.Send(c.p.Exchange, m)
	case *Moved:
		ctx.Send(c.p.Exchange, m)
	case handshakeTick:
		if c.State() == StateHandshaking {
			a.close(ctx, fmt.Sprintf("handshake not finished within %v", c.p.Config.HandshakeTimeout), false, false)
		}
	case pingTick:
		a.tick(ctx)
	case *Close:
		if m.Abort {
			_ = c.q.push(AppendReason(nil, FrameBye, m.Reason), classControl)
			a.aborting = true
			a.close(ctx, m.Reason, false, false)
			break
		}
		a.bye(ctx, m.Reason)
	case *readerDone:
		reason := "peer closed the link"
		if m.err != nil && !errors.Is(m.err, io.EOF) {
			reason = m.err.Error()
		}
		// After a bye the peer still reads until this side closes (see
		// close): what is queued for it (answers above all) goes first.
		a.close(ctx, reason, m.rejected, errors.Is(m.err, errPeerBye))
	case *actor.Stopping:
		a.close(ctx, "stopped", false, false)
	}
}

// Activate marks the link active; the exchange calls it from its actor
// after the duplicate check, before announcing anything on it.
func (c *Conn) Activate() { c.state.CompareAndSwap(StateHandshaking, StateActive) }

func (a *connActor) tick(ctx actor.Context) {
	c := a.c
	if a.closing {
		return
	}
	silent := time.Since(time.Unix(0, c.lastRx.Load()))
	if silent > c.p.Config.SilenceTimeout {
		a.close(ctx, fmt.Sprintf("peer silent for %v", silent.Round(time.Millisecond)), false, false)
		return
	}
	if c.State() != StateHandshaking {
		_ = c.q.push(AppendPing(nil, FramePing, uint64(time.Now().UnixNano())), classControl)
	}
	a.ping.Reset(c.p.Config.PingInterval)
}

// bye tells the peer why and closes after the queue drains.
func (a *connActor) bye(ctx actor.Context, reason string) {
	if a.closing {
		return
	}
	_ = a.c.q.push(AppendReason(nil, FrameBye, reason), classControl)
	a.close(ctx, reason, false, true)
}

// drainTimeout bounds how long a graceful close waits for the writer to
// send what is queued to a peer that may not be reading.
const drainTimeout = 2 * time.Second

// writerGrace bounds how long any close waits for the write in progress.
const writerGrace = 100 * time.Millisecond

// errPeerBye is the reader's error for a peer's bye.
var errPeerBye = errors.New("peer closed the link")

// close ends the link. A graceful close first lets the writer send what
// is queued; what is left (everything, otherwise) is accounted for:
// requests are failed back, reports counted as dropped (rule 24).
func (a *connActor) close(ctx actor.Context, reason string, rejected, graceful bool) {
	c := a.c
	if a.closing {
		return
	}
	a.closing = true
	if a.handshake != nil {
		a.handshake.Stop()
	}
	if a.ping != nil {
		a.ping.Stop()
	}
	wasActive := c.state.Swap(StateClosed) == StateActive
	c.reason.Store(reason)
	if graceful {
		c.q.close(true)
		flushed := false
		select {
		case <-c.writerDone:
			flushed = true
		case <-time.After(drainTimeout):
		}
		// Half-close after the bye: the peer, reading it, flushes what
		// it has queued for this side and closes, and until then what it
		// sends (answers to calls of this process, frames to relay) is
		// still read and delivered, not lost in a socket closed under it.
		// Only once the writer is done: a TLS CloseWrite writes, and would
		// wait behind a write stuck on a peer that does not read.
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && wasActive && flushed {
			c.nc.SetWriteDeadline(time.Now().Add(writerGrace))
			if cw.CloseWrite() == nil {
				select {
				case <-c.readerExited:
				case <-time.After(drainTimeout):
				}
			}
		}
	}
	pending, frames := c.q.close(false)
	// What the writer took before the close (a reject the reader just
	// queued, say) is on its way out: let it go first, so the peer
	// learns why, unless the writer is stuck on a peer that does not
	// read, which closing the socket below ends.
	if !a.aborting {
		select {
		case <-c.writerDone:
		case <-time.After(writerGrace):
		}
	}
	// Aborted, the peer is not reading (what the link holds is what the
	// node is short of): the socket closes now, without the bye, ending
	// the write under way and giving its memory back at once.
	if !a.aborting {
		c.flushControl(pending, frames)
	}
	c.failQueued(pending, frames)
	c.nc.Close()
	// The exchange withdraws what the link imported once it hears of the
	// close: the reader must be done importing by then.
	select {
	case <-c.readerExited:
	case <-time.After(drainTimeout):
		c.log.Warn("link reader did not stop")
	}
	switch {
	case wasActive:
		c.log.Info("link down", "peer", c.Info().PeerNode, "reason", reason)
	case rejected:
		c.p.Budget.LogStranger(c.log, "link refused", "reason", reason)
	case reason != "stopped" && reason != "peer closed the link" && !strings.HasPrefix(reason, DuplicateLink) &&
		!strings.Contains(reason, " stopping"):
		// Bad input or a silent peer before the handshake: worth seeing.
		c.p.Budget.LogStranger(c.log, "link closed before its handshake", "reason", reason)
	default:
		c.log.Debug("link closed", "reason", reason)
	}
	ctx.Send(c.p.Exchange, &Closed{Conn: c, Reason: reason, Rejected: rejected, WasActive: wasActive})
	ctx.Stop(ctx.Self())
}

// flushControl writes queued bye and reject frames, with a short deadline,
// so the peer learns why.
func (c *Conn) flushControl(pending []byte, frames []frameMeta) {
	var out []byte
	for _, f := range frames {
		if f.dropped || f.n < 2 {
			continue
		}
		fr := pending[f.off : f.off+f.n]
		if k, _, n, err := splitFrame(fr, c.p.Config.MaxFrame); err == nil && n > 0 && (k == FrameBye || k == FrameReject) {
			out = append(out, fr...)
		}
	}
	if len(out) > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		c.nc.Write(out)
	}
}

// failQueued fails the requests still queued on a closing link back to
// their callers and counts the reports as dropped (rule 24).
func (c *Conn) failQueued(pending []byte, frames []frameMeta) {
	for _, f := range frames {
		if f.dropped {
			continue
		}
		switch f.class {
		case classControl:
			// Answers for the peer's process, or relayed beyond it, may
			// have another way there.
			fk, body, n, err := splitFrame(pending[f.off:f.off+f.n], c.p.Config.MaxFrame)
			if err != nil || n == 0 || fk != FrameEnvelope || len(body) == 0 {
				continue
			}
			if k := registry.Kind(body[0]); k != registry.KindResponse && k != registry.KindFailure {
				continue
			}
			if e, err := DecodeEnvelope(body, nil); err == nil {
				c.rt.RouteAround(e, c)
			}
		case classReport:
			c.q.reportsDropped.Add(1)
		case classRequest:
			_, body, n, err := splitFrame(pending[f.off:f.off+f.n], c.p.Config.MaxFrame)
			if err != nil || n == 0 {
				continue
			}
			e, err := DecodeEnvelope(body, nil)
			if err != nil || e.Kind != registry.KindRequest {
				continue
			}
			fail := &registry.Failure{Code: registry.CodeLinkLost, Description: registry.CodeLinkLost.String(), Origin: registry.OriginRuntime,
				Details: "link " + c.p.ID + " to " + c.Info().PeerNode + " closed before the request was sent"}
			fe := registry.FailureEnvelope(e, fail)
			fe.NotRun = true // never sent: the caller may try elsewhere (rule 17)
			c.rt.Deliver(fe, nil)
		}
	}
}
