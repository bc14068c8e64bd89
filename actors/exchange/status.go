package exchange

// What an exchange tells about itself: its links, the peers it dials and
// the observers of link events.

import (
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/registry"
)

// LinkEvent tells observers a link went up or down (rule 11), or,
// with Synced, that everything the peer announced at link-up is now in
// this process's registry.
type LinkEvent struct {
	Active bool
	Synced bool
	// Refused is set, with Active false, when a peer this exchange dials
	// refused it (or it refused the peer: group, version or token; or
	// TLS failed on a certificate, or one side does not speak TLS): it
	// will not retry until told to dial again.
	Refused bool
	Link    registry.LinkInfo
	Reason  string // why it went down
}

// LinkStatus describes one link for the console.
type LinkStatus struct {
	ID            string             `json:"id"`
	Role          string             `json:"role"`      // the peer's role
	Direction     string             `json:"direction"` // "out" when this side dialled
	RemoteProcess registry.ProcessID `json:"remote_process"`
	RemoteNode    string             `json:"remote_node"`
	RemoteAddress string             `json:"remote_address"`
	Group         string             `json:"group"`
	State         string             `json:"state"`
	Since         time.Time          `json:"since"`
	FramesIn      uint64             `json:"messages_in"`
	FramesOut     uint64             `json:"messages_out"`
	BytesIn       uint64             `json:"bytes_in"`
	BytesOut      uint64             `json:"bytes_out"`
	Dropped       uint64             `json:"drops"`
	Refused       uint64             `json:"refused"`
	Queued        int64              `json:"queued_bytes"`
	Synced        bool               `json:"synced"`
}

// TargetStatus describes a peer the exchange dials.
type TargetStatus struct {
	Address  string `json:"address"`
	State    string `json:"state"` // linked, dialling, waiting, rejected, duplicate
	LastErr  string `json:"last_error,omitempty"`
	Attempts int    `json:"attempts"`
}

// WatchLinks calls fn, from the exchange actor, for every link that is
// up now and every link that goes up or down from now on. fn must not
// block.
//
// The returned function ends the watch. On a stopped exchange it returns
// at once and fn is never called.
func (x *Exchange) WatchLinks(fn func(LinkEvent)) (cancel func()) {
	if x.stopped.Load() {
		return func() {}
	}
	id := watchSeq.Add(1)
	done := make(chan struct{})
	x.send(&watchLinks{id: id, fn: fn, done: done})
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		return func() {} // stopped meanwhile
	}
	return func() { x.send(&unwatchLinks{id: id}) }
}

var watchSeq atomic.Uint64

// Links returns the exchange's links.
func (x *Exchange) Links() []LinkStatus {
	reply := make(chan []LinkStatus, 1)
	x.send(&queryLinks{reply: reply})
	select {
	case l := <-reply:
		return l
	case <-time.After(2 * time.Second):
		return nil
	}
}

// Targets returns the peers the exchange dials and how that goes.
func (x *Exchange) Targets() []TargetStatus {
	reply := make(chan []TargetStatus, 1)
	x.send(&queryTargets{reply: reply})
	select {
	case l := <-reply:
		return l
	case <-time.After(2 * time.Second):
		return nil
	}
}

func (a *exchangeActor) notify(ev LinkEvent) {
	for _, fn := range a.observers {
		fn(ev)
	}
}

func (a *exchangeActor) links() []LinkStatus {
	out := make([]LinkStatus, 0, len(a.conns))
	for c := range a.conns {
		info, s := c.Info(), c.Stats()
		dir := "in"
		if c.Dialed() {
			dir = "out"
		}
		out = append(out, LinkStatus{
			ID: c.ID(), Role: info.PeerRole.String(), Direction: dir, RemoteProcess: info.PeerProcess,
			RemoteNode: info.PeerNode, RemoteAddress: info.PeerAddress, Group: info.ExchangeGroup,
			State: connection.StateName(c.State()), Since: c.Since(), FramesIn: s.FramesIn, FramesOut: s.FramesOut,
			BytesIn: s.BytesIn, BytesOut: s.BytesOut, Dropped: s.ReportsDropped, Refused: s.RequestsRefused, Queued: s.Queued,
			Synced: a.conns[c].synced,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (a *exchangeActor) targetStatus() []TargetStatus {
	out := make([]TargetStatus, 0, len(a.targets))
	for _, t := range a.targets {
		st := "waiting"
		switch {
		case t.conn != nil && t.conn.State() == connection.StateActive:
			st = "linked"
		case t.dialling || t.conn != nil:
			st = "dialling"
		case t.rejected:
			st = "rejected"
		case t.waitFor != 0:
			st = "duplicate"
		}
		out = append(out, TargetStatus{Address: t.addr, State: st, LastErr: t.lastErr, Attempts: t.attempts})
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].Address, out[j].Address) < 0 })
	return out
}
