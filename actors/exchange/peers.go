package exchange

// Link counters by peer, summed over the links a peer has had, for
// metrics that survive reconnects.

import (
	"sort"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/registry"
)

// PeerStats are the counters of the links to one peer, summed over every
// link it has had, so they survive reconnects (metrics need counters
// that only grow). Peer is the node name of a server peer, or "clients"
// for all client links together: a label must never be a value a
// stranger chooses at will (rule 36).
type PeerStats struct {
	Peer      string `json:"peer"`
	Group     string `json:"group"`
	Links     int    `json:"links"` // active now
	FramesIn  uint64 `json:"messages_in"`
	FramesOut uint64 `json:"messages_out"`
	BytesIn   uint64 `json:"bytes_in"`
	BytesOut  uint64 `json:"bytes_out"`
	// Dropped counts reports dropped for a slow peer (its queue was
	// full), Refused requests refused as overloaded, AnnouncementsRefused
	// what a server peer announced past the node's bounds.
	Dropped              uint64 `json:"drops"`
	Refused              uint64 `json:"refused"`
	AnnouncementsRefused uint64 `json:"announcements_refused"`
	Queued               int64  `json:"queued_bytes"` // now
}

// ClientsPeer is the Peer of PeerStats for client links.
const ClientsPeer = "clients"

// maxPeerLabels bounds the server peers counted apart; the rest share
// otherServersPeer.
const (
	maxPeerLabels    = 256
	otherServersPeer = "other-servers"
)

func (a *exchangeActor) peerLabel(info registry.LinkInfo) string {
	if info.PeerRole != registry.RoleServer {
		return ClientsPeer
	}
	if _, known := a.retired[info.PeerNode]; known || len(a.retired) < maxPeerLabels {
		return info.PeerNode
	}
	return otherServersPeer
}

// retire adds a closed link's counters to its peer's totals.
func (a *exchangeActor) retire(c *connection.Conn) {
	if c.Info().PeerProcess == 0 {
		return // never got past its handshake: nobody's link
	}
	label := a.peerLabel(c.Info())
	t := a.retired[label]
	if t == nil {
		t = &PeerStats{Peer: label, Group: a.x.cfg.Group}
		a.retired[label] = t
	}
	addStats(t, c.Stats())
}

func addStats(t *PeerStats, s connection.Stats) {
	t.FramesIn += s.FramesIn
	t.FramesOut += s.FramesOut
	t.BytesIn += s.BytesIn
	t.BytesOut += s.BytesOut
	t.Dropped += s.ReportsDropped
	t.Refused += s.RequestsRefused
	t.AnnouncementsRefused += s.AnnouncementsRefused
}

func (a *exchangeActor) peerStats() []PeerStats {
	out := map[string]*PeerStats{}
	for label, t := range a.retired {
		c := *t
		out[label] = &c
	}
	for c := range a.conns {
		info := c.Info()
		if info.PeerProcess == 0 {
			continue
		}
		label := a.peerLabel(info)
		t := out[label]
		if t == nil {
			t = &PeerStats{Peer: label, Group: a.x.cfg.Group}
			out[label] = t
		}
		s := c.Stats()
		addStats(t, s)
		t.Queued += s.Queued
		if c.State() == connection.StateActive {
			t.Links++
		}
	}
	list := make([]PeerStats, 0, len(out))
	for _, t := range out {
		list = append(list, *t)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Peer < list[j].Peer })
	return list
}

type queryPeers struct{ reply chan []PeerStats }

// Peers returns the counters of the exchange's links by peer.
func (x *Exchange) Peers() []PeerStats {
	reply := make(chan []PeerStats, 1)
	x.send(&queryPeers{reply: reply})
	select {
	case l := <-reply:
		return l
	case <-time.After(2 * time.Second):
		return nil
	}
}
