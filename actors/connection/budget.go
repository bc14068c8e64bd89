package connection

// The node's budget across all its links (rule 36): connections in
// their handshake, bytes of frames still arriving, bytes queued outbound,
// remote bindings; and how an outbound queue pays when it holds the most.

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limits bounds what the peers of a node can make it hold across all its
// links (rule 36); each link has bounds of its own too (Config).
// The zero value of a field takes its default.
type Limits struct {
	// Incomplete bounds the bytes of frames that have begun to arrive
	// but are not whole yet (64 MiB). A link that would go past it is
	// closed, unless it links two servers: closing those would split the
	// mesh.
	Incomplete int64
	// Queued bounds the bytes waiting in outbound queues (256 MiB). Past
	// it the link holding the most pays: its reports are dropped, and it
	// is closed if it still holds anything (answers it cannot drop).
	Queued int64
	// Handshaking bounds the accepted connections that have not finished
	// the handshake (1,024), and HandshakingPerHost those of one remote
	// host (64). Past them a new connection is refused at once.
	Handshaking        int
	HandshakingPerHost int
	// Bindings bounds the remote bindings (services and processes)
	// announced over all links together (250,000). Past it a client link
	// is closed; a link between servers keeps going but its further
	// announcements are refused.
	Bindings int64
}

// Defaults of Limits.
const (
	DefaultIncomplete         = 64 << 20
	DefaultQueued             = 256 << 20
	DefaultHandshaking        = 1024
	DefaultHandshakingPerHost = 64
	DefaultBindings           = 250_000
)

func (l Limits) withDefaults() Limits {
	if l.Incomplete <= 0 {
		l.Incomplete = DefaultIncomplete
	}
	if l.Queued <= 0 {
		l.Queued = DefaultQueued
	}
	if l.Handshaking <= 0 {
		l.Handshaking = DefaultHandshaking
	}
	if l.HandshakingPerHost <= 0 {
		l.HandshakingPerHost = DefaultHandshakingPerHost
	}
	if l.Bindings <= 0 {
		l.Bindings = DefaultBindings
	}
	return l
}

// Budget is the live accounting of a node's Limits, shared by every link
// of every exchange of the node. Its methods are safe for concurrent use.
type Budget struct {
	limits Limits

	incomplete atomic.Int64 // bytes of incomplete frames held by readers
	queued     atomic.Int64 // bytes in outbound queues
	bindings   atomic.Int64 // announcements links hold

	mu          sync.Mutex
	handshaking int
	perHost     map[string]int
	queues      map[*outQueue]struct{}
	relieving   atomic.Bool // a relief of the biggest queue is under way

	// Lines about connections that fail before they are up are few: a
	// stranger must not decide how much the node logs.
	strangerLog       rate.Sometimes
	strangersUnlogged atomic.Int64
}

// NewBudget returns the accounting of a node's limits.
func NewBudget(l Limits) *Budget {
	return &Budget{limits: l.withDefaults(), perHost: map[string]int{}, queues: map[*outQueue]struct{}{},
		strangerLog: rate.Sometimes{First: 5, Interval: 10 * time.Second}}
}

// LogStranger logs, at Warn, a connection that failed or was refused
// before it was up — at most five lines, then one each 10 s, which
// says how many were not logged since.
func (b *Budget) LogStranger(log *slog.Logger, msg string, args ...any) {
	logged := false
	b.strangerLog.Do(func() {
		logged = true
		if n := b.strangersUnlogged.Swap(0); n > 0 {
			args = append(args, "not_logged_since", n)
		}
		log.Warn(msg, args...)
	})
	if !logged {
		b.strangersUnlogged.Add(1)
		log.Debug(msg, args...)
	}
}

// Limits returns the limits in force, defaults filled in.
func (b *Budget) Limits() Limits { return b.limits }

// BudgetUse is what a Budget holds now.
type BudgetUse struct {
	Incomplete  int64 `json:"incomplete_bytes"`
	Queued      int64 `json:"queued_bytes"`
	Bindings    int64 `json:"bindings"`
	Handshaking int   `json:"handshaking"`
}

// Use returns what the budget holds now.
func (b *Budget) Use() BudgetUse {
	b.mu.Lock()
	h := b.handshaking
	b.mu.Unlock()
	return BudgetUse{Incomplete: b.incomplete.Load(), Queued: b.queued.Load(), Bindings: b.bindings.Load(), Handshaking: h}
}

// Handshake reserves room for an accepted connection that has not
// finished its handshake. It reports false, reserving nothing, when the
// node or the connection's host is at its bound; release gives the room
// back (once) when the handshake is over, either way.
func (b *Budget) Handshake(remote net.Addr) (release func(), ok bool) {
	host := hostOf(remote)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.handshaking >= b.limits.Handshaking || b.perHost[host] >= b.limits.HandshakingPerHost {
		return nil, false
	}
	b.handshaking++
	b.perHost[host]++
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.handshaking--
			if b.perHost[host]--; b.perHost[host] <= 0 {
				delete(b.perHost, host)
			}
		})
	}, true
}

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// chargeIncomplete moves a reader's charge for incomplete frames from old
// to now bytes. A growth that would take the node past its bound is not
// made unless force is set (a link between servers); it reports whether
// the charge is now.
func (b *Budget) chargeIncomplete(old, now int64, force bool) bool {
	delta := now - old
	if delta > 0 && !force && b.incomplete.Load()+delta > b.limits.Incomplete {
		return false
	}
	b.incomplete.Add(delta)
	return true
}

// chargeBindings is chargeIncomplete for announcements.
func (b *Budget) chargeBindings(delta int64, force bool) bool {
	if delta > 0 && !force && b.bindings.Load()+delta > b.limits.Bindings {
		return false
	}
	b.bindings.Add(delta)
	return true
}

func (b *Budget) addQueue(q *outQueue) {
	b.mu.Lock()
	b.queues[q] = struct{}{}
	b.mu.Unlock()
}

func (b *Budget) removeQueue(q *outQueue) {
	b.mu.Lock()
	delete(b.queues, q)
	b.mu.Unlock()
}

// admitQueued decides, with q locked, whether q may queue n more bytes
// as far as the node's bound goes. Past the bound the queue holding the
// most pays: when that is q it reports false (q's own limits then
// apply); when it is another, that one is relieved in the background
// and q goes on.
func (b *Budget) admitQueued(q *outQueue, n int) bool {
	if b.queued.Load()+int64(n) <= b.limits.Queued {
		return true
	}
	b.mu.Lock()
	var biggest *outQueue
	var most, listed int64 = -1, 0
	for o := range b.queues {
		c := o.charged.Load()
		listed += c
		if c > most {
			biggest, most = o, c
		}
	}
	b.mu.Unlock()
	if listed+int64(n) <= b.limits.Queued {
		// The excess is held by links being aborted, whose sockets are
		// closing and whose writes give it back at once: no open link
		// pays for it.
		return true
	}
	if biggest == nil || biggest == q || most <= q.charged.Load() {
		return false // q holds the most: it pays
	}
	if b.relieving.CompareAndSwap(false, true) {
		go func() {
			defer b.relieving.Store(false)
			biggest.relieve()
		}()
	}
	return true
}

// sync brings, locked, the queue's charge against the node's budget to
// what it holds.
func (q *outQueue) sync() {
	if q.budget == nil {
		return
	}
	cur := int64(q.live + q.inflight)
	if d := cur - q.charged.Load(); d != 0 {
		q.charged.Store(cur)
		q.budget.queued.Add(d)
	}
}

// relieve makes the queue pay for a node out of outbound room: its
// reports are dropped, and if it still holds anything (answers, which
// cannot be) the link is closed.
func (q *outQueue) relieve() {
	q.mu.Lock()
	q.dropping = true
	q.dropOldestReports(q.live)
	held := q.live + q.inflight
	shut := held > 0 && !q.closed
	q.mu.Unlock()
	if shut && q.overBudget != nil {
		q.overBudget("the node's outbound budget is full and this link held the most (" + itoa(held) + " bytes)")
	}
}
