package cluster

// memberlist's delegates: metadata, events, vetoes of incompatible
// members, probe round trips.

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// maxRejected bounds the set of incompatible members already logged.
const maxRejected = 1024

// delegate implements memberlist's Delegate, EventDelegate and AliveDelegate
// for a Cluster. memberlist calls them from its network goroutines, the
// EventDelegate and AliveDelegate while it holds its node lock: they copy
// what they need and return, and never call back into memberlist.
type delegate struct{ c *Cluster }

var (
	_ memberlist.Delegate      = delegate{}
	_ memberlist.EventDelegate = delegate{}
	_ memberlist.AliveDelegate = delegate{}
)

// NodeMeta returns the encoded Meta, checked against MetaMaxSize when set.
func (d delegate) NodeMeta(limit int) []byte {
	b := *d.c.meta.Load()
	if len(b) > limit {
		return nil
	}
	return b
}

// NotifyMsg receives user messages: goodbyes and their acknowledgements.
func (d delegate) NotifyMsg(b []byte) {
	if len(b) < 2 {
		return
	}
	c := d.c
	switch b[0] {
	case msgGoodbye:
		name, addr, _ := strings.Cut(string(b[1:]), "\x00")
		c.queue.push(event{kind: evLeaving, name: name})
		if addr != "" {
			go c.ackGoodbye(name, addr)
		}
	case msgGoodbyeAck:
		c.mu.Lock()
		acks := c.acks
		c.mu.Unlock()
		if acks != nil {
			select {
			case acks <- string(b[1:]):
			default:
			}
		}
	}
}

// GetBroadcasts has nothing to gossip: the cluster only uses metadata.
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState has no state for push/pull.
func (d delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState ignores the remote push/pull state.
func (d delegate) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin queues a member that became alive.
func (d delegate) NotifyJoin(n *memberlist.Node) { d.c.queue.push(nodeEvent(evUp, n)) }

// NotifyUpdate queues a member whose metadata changed.
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.c.queue.push(nodeEvent(evUp, n)) }

// NotifyLeave queues a member declared dead or left.
func (d delegate) NotifyLeave(n *memberlist.Node) { d.c.queue.push(nodeEvent(evDown, n)) }

// NotifyAlive vetoes members that are not compatible with this one, so they
// never enter memberlist's member list: not probed, not counted, not
// reported. Each is logged once at Warn (and again if its reason changes).
func (d delegate) NotifyAlive(n *memberlist.Node) error {
	c := d.c
	if n.Name == c.name {
		return nil
	}
	reason := incompatibility(c.selfMeta(), n.Meta)
	if reason == "" {
		return nil
	}
	c.rejectMu.Lock()
	prev, seen := c.rejected[n.Name]
	logIt := !seen || prev != reason
	if logIt {
		if len(c.rejected) >= maxRejected {
			clear(c.rejected)
		}
		c.rejected[n.Name] = reason
	}
	c.rejectMu.Unlock()
	if logIt {
		c.log.Warn("ignoring incompatible member", "member", n.Name,
			"addr", net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))), "reason", reason)
	}
	return errors.New(vetoMarker + ": " + reason)
}

// nodeEvent copies what the cluster needs out of a memberlist node, which
// memberlist may change after the callback returns.
func nodeEvent(kind eventKind, n *memberlist.Node) event {
	return event{
		kind: kind,
		name: n.Name,
		ip:   append(net.IP(nil), n.Addr...),
		port: n.Port,
		meta: append([]byte(nil), n.Meta...),
	}
}

// AckPayload is memberlist's PingDelegate: acks carry nothing extra.
func (d delegate) AckPayload() []byte { return nil }

// NotifyPingComplete records a member's acknowledged probe for Members.
// A probe of a member whose MemberUp is still queued is not kept: the
// next one is, a probe interval later.
func (d delegate) NotifyPingComplete(other *memberlist.Node, rtt time.Duration, _ []byte) {
	c := d.c
	c.mu.Lock()
	if p := c.peers[other.Name]; p != nil {
		p.rtt, p.lastAck = rtt, time.Now()
	}
	c.mu.Unlock()
}
