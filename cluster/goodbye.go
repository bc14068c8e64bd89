package cluster

// Leaving with a goodbye to every peer, so they report "left" at once.

import (
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// User messages between members, sent straight to one member over TCP.
// memberlist's own leave is gossiped, and v0.7.0 does not tell the
// EventDelegate whether a member left or died (hashicorp/memberlist#266, PR
// #321), so a leaving member says goodbye to each peer itself: the peer
// reports it "left" at once and acknowledges, and only then does the member
// start memberlist's leave, whose NotifyLeave therefore always comes second.
const (
	// msgGoodbye: 'L' name 0x00 host:port — the sender is leaving; the
	// address is where to send the acknowledgement.
	msgGoodbye byte = 'L'
	// msgGoodbyeAck: 'A' name — the sender has taken note of a goodbye.
	msgGoodbyeAck byte = 'A'
)

// sayGoodbye tells every peer, in parallel, that this member is leaving,
// and waits until each has acknowledged, could not be reached, or deadline
// passed.
func (c *Cluster) sayGoodbye(deadline time.Time) {
	c.mu.Lock()
	targets := make([]*memberlist.Node, 0, len(c.peers))
	for _, p := range c.peers {
		targets = append(targets, &memberlist.Node{Name: p.member.Name, Addr: p.ip, Port: p.port})
	}
	acks := make(chan string, len(targets)+1)
	c.acks = acks
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.acks = nil
		c.mu.Unlock()
	}()
	if len(targets) == 0 {
		return
	}

	type result struct {
		name string
		err  error
	}
	msg := append([]byte{msgGoodbye}, c.name+"\x00"+c.addr...)
	results := make(chan result, len(targets))
	pending := make(map[string]bool, len(targets))
	for _, n := range targets {
		pending[n.Name] = true
		go func() { results <- result{n.Name, c.ml.SendReliable(n, msg)} }()
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for len(pending) > 0 {
		select {
		case r := <-results:
			if r.err != nil {
				delete(pending, r.name)
				c.log.Debug("goodbye not delivered; the peer will see memberlist's leave", "member", r.name, "err", r.err)
			}
		case name := <-acks:
			delete(pending, name)
		case <-timer.C:
			c.log.Debug("goodbye not acknowledged in time", "members", slices.Collect(maps.Keys(pending)))
			return
		}
	}
}

// ackGoodbye acknowledges the goodbye of the member called name.
func (c *Cluster) ackGoodbye(name, addr string) {
	select {
	case <-c.ready:
	case <-c.evStop:
		return
	}
	host, portStr, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	port, perr := strconv.ParseUint(portStr, 10, 16)
	if err != nil || ip == nil || perr != nil {
		c.log.Debug("goodbye with a bad address", "member", name, "addr", addr)
		return
	}
	n := &memberlist.Node{Name: name, Addr: ip, Port: uint16(port)}
	if err := c.ml.SendReliable(n, append([]byte{msgGoodbyeAck}, c.name...)); err != nil {
		c.log.Debug("goodbye acknowledgement not delivered", "member", name, "err", err)
	}
}
