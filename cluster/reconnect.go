package cluster

import (
	"slices"
	"sync"
	"time"
)

// Reconnecting, as Serf does it (its reconnect_interval and
// reconnect_timeout): memberlist exchanges state only with members it
// believes alive, and forgets a dead one after GossipToTheDeadTime. When a
// partition heals, each side still holds the other dead, nobody tells a
// member that it was declared dead (so nobody refutes), and the split
// stays. The seeds do not help either: a member rejoins them only when it
// is alone, and after a split nobody is.
//
// So each member remembers the gossip address of every member it saw fail
// (not of those that left), and its seeds, and joins them again every
// ReconnectInterval (±20 %) while no live member has that address, for
// ReconnectTimeout after the failure (seeds for as long as it runs). A join
// is a push/pull of the whole member list with that address: each side
// learns that the other holds it dead, refutes with a higher incarnation,
// and memberlist reports the refuting member alive again, which comes out
// as MemberUp.

const (
	// maxRejoin bounds the list of addresses to rejoin; past it, the
	// member that failed first is forgotten first. Seeds are not counted
	// out: they are few and come from the configuration.
	maxRejoin = 1024

	// maxRejoinsInFlight bounds the joins under way at once. A join to an
	// address where packets are dropped waits memberlist's TCPTimeout
	// (1 s in Local and Fast, 10 s in LAN); the list is served oldest
	// attempt first, so every address gets its turn.
	maxRejoinsInFlight = 16
)

// rejoinEntry is an address to join again.
type rejoinEntry struct {
	addr     string    // gossip host:port
	name     string    // the member that failed there; "" for a seed no member failed at
	seed     bool      // from Config.Join: kept while the member runs
	failed   time.Time // when the member was reported dead; zero for a seed
	lastTry  time.Time // when the last join to it ended; zero before the first
	inFlight bool
}

// rejoinList is the set of addresses to rejoin, by address. Its methods
// are safe for concurrent use.
type rejoinList struct {
	mu      sync.Mutex
	entries map[string]*rejoinEntry
	limit   int // of entries that are not seeds
}

func newRejoinList(limit int) *rejoinList {
	return &rejoinList{entries: map[string]*rejoinEntry{}, limit: limit}
}

// addSeed adds a seed address.
func (l *rejoinList) addSeed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[addr]; e != nil {
		e.seed = true
		return
	}
	l.entries[addr] = &rejoinEntry{addr: addr, seed: true}
}

// failed records that the member called name, at addr, was reported dead
// at now. It returns the entry it evicted to stay within the limit, if
// any.
func (l *rejoinList) failed(addr, name string, now time.Time) (evicted *rejoinEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[addr]; e != nil {
		e.name, e.failed = name, now
		return nil
	}
	if l.countFailed() >= l.limit {
		for _, e := range l.entries {
			if !e.seed && (evicted == nil || e.failed.Before(evicted.failed)) {
				evicted = e
			}
		}
		if evicted != nil {
			delete(l.entries, evicted.addr)
			c := *evicted
			evicted = &c
		}
	}
	l.entries[addr] = &rejoinEntry{addr: addr, name: name, failed: now}
	return evicted
}

// countFailed counts the entries that are not seeds; l.mu is held.
func (l *rejoinList) countFailed() int {
	n := 0
	for _, e := range l.entries {
		if !e.seed {
			n++
		}
	}
	return n
}

// back records that a member is alive at addr: the entry there is done
// with (a seed stays, for later). It returns a copy of the entry as it
// was when a member had failed there, or nil.
func (l *rejoinList) back(addr string) *rejoinEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[addr]
	if e == nil || e.failed.IsZero() {
		return nil
	}
	was := *e
	if e.seed {
		e.name, e.failed = "", time.Time{}
	} else {
		delete(l.entries, addr)
	}
	return &was
}

// left forgets the member called name, which said goodbye: it is not
// rejoined. A seed at its address stays: a node started there later is a
// new member.
func (l *rejoinList) left(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for addr, e := range l.entries {
		if e.name != name {
			continue
		}
		if e.seed {
			e.name, e.failed = "", time.Time{}
		} else {
			delete(l.entries, addr)
		}
	}
}

// reap removes the members that failed more than timeout before now and
// returns them.
func (l *rejoinList) reap(now time.Time, timeout time.Duration) []rejoinEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []rejoinEntry
	for addr, e := range l.entries {
		if e.failed.IsZero() || now.Sub(e.failed) <= timeout {
			continue
		}
		out = append(out, *e)
		if e.seed {
			e.name, e.failed = "", time.Time{}
		} else {
			delete(l.entries, addr)
		}
	}
	return out
}

// due picks the addresses to join now, marked in flight: those not in
// flight already, where no live member is (alive) and that are not self,
// oldest attempt first, so that at most maxInFlight are in flight in all.
func (l *rejoinList) due(alive map[string]bool, self string, maxInFlight int) []rejoinEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var cands []*rejoinEntry
	inFlight := 0
	for _, e := range l.entries {
		switch {
		case e.inFlight:
			inFlight++
		case !alive[e.addr] && e.addr != self:
			cands = append(cands, e)
		}
	}
	slices.SortFunc(cands, func(a, b *rejoinEntry) int { return a.lastTry.Compare(b.lastTry) })
	cands = cands[:max(0, min(len(cands), maxInFlight-inFlight))]
	out := make([]rejoinEntry, len(cands))
	for i, e := range cands {
		e.inFlight = true
		out[i] = *e
	}
	return out
}

// done records the end of a join to addr.
func (l *rejoinList) done(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[addr]; e != nil {
		e.inFlight, e.lastTry = false, now
	}
}

// snapshot returns a copy of the entries, sorted by address.
func (l *rejoinList) snapshot() []rejoinEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]rejoinEntry, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b rejoinEntry) int {
		switch {
		case a.addr < b.addr:
			return -1
		case a.addr > b.addr:
			return 1
		}
		return 0
	})
	return out
}

// reconnectLoop joins the due addresses every reconnect interval (±20 %)
// until joinStop is closed.
func (c *Cluster) reconnectLoop() {
	defer close(c.rejoinDone)
	for {
		if !c.sleep(jitter(c.reconnectInterval)) {
			return
		}
		c.reconnectRound(time.Now())
	}
}

// reconnectRound forgets the members that failed too long ago and starts
// a join to each address due. The joins run on their own: one that waits
// for an unreachable address does not hold the next round back, and is
// not waited for by Leave or Shutdown (it ends within memberlist's
// TCPTimeout).
func (c *Cluster) reconnectRound(now time.Time) {
	for _, e := range c.rejoin.reap(now, c.reconnectTimeout) {
		c.log.Info("no longer trying to rejoin member", "member", e.name, "addr", e.addr,
			"failed", e.failed.Format(time.RFC3339), "reconnect_timeout", c.reconnectTimeout)
	}
	c.mu.Lock()
	alive := make(map[string]bool, len(c.peers))
	for _, p := range c.peers {
		alive[p.member.Addr] = true
	}
	c.mu.Unlock()
	for _, e := range c.rejoin.due(alive, c.addr, maxRejoinsInFlight) {
		go c.rejoinOnce(e)
	}
}

// rejoinOnce joins the address of e once.
func (c *Cluster) rejoinOnce(e rejoinEntry) {
	defer func() { c.rejoin.done(e.addr, time.Now()) }()
	if c.closed.Load() {
		return
	}
	c.rejoinAttempts.Add(1)
	start := time.Now()
	n, err := c.ml.Join([]string{e.addr})
	if err != nil || n == 0 {
		c.log.Debug("rejoin failed", "addr", e.addr, "member", e.name, "seed", e.seed, "err", err)
		return
	}
	c.rejoins.Add(1)
	level := c.log.Debug // a seed answering is no news
	if e.name != "" {
		level = c.log.Info
	}
	level("rejoined", "addr", e.addr, "member", e.name, "seed", e.seed,
		"took", time.Since(start).Round(time.Millisecond))
}

// rejoinFailed adds a member reported dead to the addresses to rejoin.
func (c *Cluster) rejoinFailed(m Member, now time.Time) {
	if c.reconnectInterval <= 0 || m.Addr == c.addr {
		return
	}
	if ev := c.rejoin.failed(m.Addr, m.Name, now); ev != nil {
		c.log.Info("no longer trying to rejoin member: too many failed members", "member", ev.name, "addr", ev.addr,
			"failed", ev.failed.Format(time.RFC3339), "limit", maxRejoin)
	}
}

// rejoinBack takes a member reported up off the addresses to rejoin.
func (c *Cluster) rejoinBack(m Member, now time.Time) {
	if e := c.rejoin.back(m.Addr); e != nil && e.name == m.Name {
		c.log.Info("member back", "member", m.Name, "addr", m.Addr, "after", now.Sub(e.failed).Round(time.Millisecond))
	}
}
