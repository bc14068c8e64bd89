package cluster

// Members coming and going, and the events the cluster's user is told.

import (
	"net"
	"strconv"
	"sync"
	"time"
)

// States of a Member. memberlist v0.7.0 does not report when it suspects a
// member, so a member is alive until it is reported dead or left.
const (
	StateAlive = "alive"
	StateDead  = "dead"
	StateLeft  = "left"
)

// Reasons given to Events.MemberDown.
const (
	// ReasonLeft: the member called Leave; it said goodbye before going.
	ReasonLeft = "left"
	// ReasonDead: the failure detector declared the member dead (crash,
	// kill, partition, or a Leave whose goodbye did not reach this member).
	ReasonDead = "dead"
	// ReasonIncompatible: the member's new metadata is no longer
	// compatible. memberlist normally drops such updates before they are
	// seen, so this is a safety net.
	ReasonIncompatible = "incompatible"
)

// Member is one member of the cluster as this member sees it.
type Member struct {
	Name  string `json:"name"`  // memberlist name, "<Meta.Node>#<boot id>": unique per start
	Addr  string `json:"addr"`  // gossip host:port
	Meta  Meta   `json:"meta"`  // what the member gossips about itself
	State string `json:"state"` // StateAlive, StateDead or StateLeft

	// From the failure detector's last acknowledged direct probe of the
	// member, as Members saw it (0 for the local member, in events, and
	// before the first ack): its round trip, and how long ago it came.
	// Members are probed in turn, one per probe interval, so an age well
	// past the interval times the number of other members is a member
	// about to be suspected, before memberlist says so.
	RTTMillis    float64 `json:"rtt_ms,omitempty"`
	AckAgeMillis float64 `json:"ack_age_ms,omitempty"`
}

// Events is told of membership changes of other compatible members, never of
// the local one. Its methods are called in order, one at a time, from a
// goroutine owned by the Cluster. They must not block for long (hand the
// news to an actor or a channel), and must not call Leave or Shutdown, which
// wait for that goroutine. No call starts after Leave or Shutdown returns.
//
// A restarted node is a new member: new Name, new Meta.Process, same
// Meta.Node. The MemberDown of its old incarnation may come before or after
// the MemberUp of the new one, so key state by Member.Name (or
// Meta.Process), not by Meta.Node.
type Events interface {
	// MemberUp is called when a compatible member joins, comes back after
	// being declared dead, or changes its metadata. m.State is StateAlive.
	MemberUp(m Member)

	// MemberDown is called when a member that was reported up is gone:
	// reason is ReasonLeft or ReasonDead (or, as a safety net,
	// ReasonIncompatible), and m.State is StateLeft or StateDead.
	MemberDown(m Member, reason string)
}

// EventFuncs adapts two functions to Events; a nil function is skipped.
type EventFuncs struct {
	Up   func(m Member)
	Down func(m Member, reason string)
}

// MemberUp calls f.Up if it is set.
func (f EventFuncs) MemberUp(m Member) {
	if f.Up != nil {
		f.Up(m)
	}
}

// MemberDown calls f.Down if it is set.
func (f EventFuncs) MemberDown(m Member, reason string) {
	if f.Down != nil {
		f.Down(m, reason)
	}
}

// eventKind says what happened to a member.
type eventKind int

const (
	evUp      eventKind = iota // memberlist NotifyJoin or NotifyUpdate
	evDown                     // memberlist NotifyLeave: dead or left
	evLeaving                  // the member's goodbye message
)

// event is one membership change, copied out of memberlist's callbacks.
type event struct {
	kind eventKind
	name string
	ip   net.IP
	port uint16
	meta []byte
}

// peer is a member reported up, with what is needed to send to it.
type peer struct {
	member  Member
	ip      net.IP
	port    uint16
	rtt     time.Duration // of the last acknowledged probe
	lastAck time.Time
}

// queue is an unbounded FIFO of events: memberlist's callbacks push without
// ever blocking; the delivery goroutine takes everything at once.
type queue struct {
	mu    sync.Mutex
	items []event
	wake  chan struct{} // capacity 1: "there is something"
}

func newQueue() *queue { return &queue{wake: make(chan struct{}, 1)} }

func (q *queue) push(e event) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) take() []event {
	q.mu.Lock()
	items := q.items
	q.items = nil
	q.mu.Unlock()
	return items
}

// goneTTL is how long the names of members that said goodbye are remembered,
// so that late gossip about them is not taken for a comeback. memberlist
// reaps them after GossipToTheDeadTime (at most 30 s in the presets).
const goneTTL = 2 * time.Minute

// deliver runs the events goroutine until evStop is closed.
func (c *Cluster) deliver() {
	defer close(c.evDone)
	for {
		select {
		case <-c.evStop:
			return
		case <-c.queue.wake:
		}
		for _, e := range c.queue.take() {
			select {
			case <-c.evStop:
				return
			default:
			}
			c.handle(e)
		}
	}
}

// handle updates the member table for e and tells Events.
func (c *Cluster) handle(e event) {
	if e.name == c.name {
		return
	}
	switch e.kind {
	case evUp:
		c.memberUp(e)
	case evDown, evLeaving:
		c.memberDown(e)
	}
}

func (c *Cluster) memberUp(e event) {
	reason := incompatibility(c.selfMeta(), e.meta)
	c.mu.Lock()
	if _, gone := c.gone[e.name]; gone {
		c.mu.Unlock()
		return
	}
	if reason != "" {
		p, was := c.peers[e.name]
		delete(c.peers, e.name)
		alone := len(c.peers) == 0
		c.mu.Unlock()
		if was {
			c.log.Warn("member became incompatible; dropping it", "member", e.name, "reason", reason)
			p.member.State = StateDead
			c.ev.MemberDown(p.member, ReasonIncompatible)
			if alone {
				c.signalAlone()
			}
		}
		return
	}
	meta, _ := decodeMeta(e.meta) // checked by incompatibility
	m := Member{
		Name:  e.name,
		Addr:  net.JoinHostPort(e.ip.String(), strconv.Itoa(int(e.port))),
		Meta:  meta,
		State: StateAlive,
	}
	was, known := c.peers[e.name]
	now := &peer{member: m, ip: e.ip, port: e.port}
	if known {
		now.rtt, now.lastAck = was.rtt, was.lastAck // new metadata, same probes
	}
	c.peers[e.name] = now
	c.mu.Unlock()
	if known {
		c.log.Info("member updated", "member", m.Name, "exchange", meta.Exchange, "group", meta.Group, "role", meta.Role)
	} else {
		c.log.Info("member up", "member", m.Name, "addr", m.Addr, "exchange", meta.Exchange, "group", meta.Group, "role", meta.Role)
		// A member declared dead that comes back (memberlist took its
		// refutation: dead → alive) is here too, reported up at once.
		c.rejoinBack(m, time.Now())
	}
	c.ev.MemberUp(m)
}

func (c *Cluster) memberDown(e event) {
	now := time.Now()
	c.mu.Lock()
	p, ok := c.peers[e.name]
	delete(c.peers, e.name)
	if e.kind == evLeaving {
		for name, at := range c.gone {
			if now.Sub(at) > goneTTL {
				delete(c.gone, name)
			}
		}
		c.gone[e.name] = now
	}
	alone := len(c.peers) == 0
	c.mu.Unlock()
	if e.kind == evLeaving {
		c.rejoin.left(e.name) // whether it was up or not: it is not rejoined
	} else if ok {
		c.rejoinFailed(p.member, now)
	}
	if ok {
		reason, state := ReasonDead, StateDead
		if e.kind == evLeaving {
			reason, state = ReasonLeft, StateLeft
		}
		p.member.State = state
		c.log.Info("member down", "member", p.member.Name, "reason", reason)
		c.ev.MemberDown(p.member, reason)
	}
	// Also after a NotifyLeave for a member already reported down: memberlist
	// counts it out only now, and the join loop checks memberlist's count.
	if alone && e.kind == evDown {
		c.signalAlone()
	}
}

// signalAlone wakes the join loop, which rejoins the seeds if memberlist
// agrees that no other member is alive.
func (c *Cluster) signalAlone() {
	select {
	case c.alone <- struct{}{}:
	default:
	}
}
