package node

// Mesh: a server exchange kept linked to every server of its group
// that gossip reports.

import (
	"log/slog"
	"sync"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/cluster"
	"github.com/netsvc-go/netsvc/service"
)

// Mesh keeps a node's server exchange linked to every other server of its
// exchange group that gossip reports: a full mesh, without
// peer lists. Of each pair, the server with the smaller process id dials
// (the same rule that picks the surviving link when both do, rule
// 10); a member declared dead, or gone, has its link closed at once
// instead of waiting for TCP to notice. Servers of other exchange groups
// sharing the gossip are not linked.
type Mesh struct {
	c     *cluster.Cluster
	ev    cluster.Events // told of members too, after the mesh acted
	x     *exchange.Exchange
	self  service.ProcessID
	addr  string // this node's exchange address, as gossiped
	group string
	log   *slog.Logger

	mu     sync.Mutex
	peers  map[string]cluster.Member // same-group servers, by member name
	dialed map[string]string         // member name → the exchange address this node dials
	// dead are the members this node closed links to because they were
	// declared dead: when one is seen alive again (a blip) this node
	// dials it once itself, whichever side rule 10 says dials.
	dead map[string]bool
}

// StartMesh joins the gossip cluster for a node's server exchange. It
// fills cfg.Meta with the node's process id, name, exchange address and
// group; set cfg.Meta.Console and Version yourself. ev, when not nil, is
// told of every member change too (of every group), after the mesh acted
// on it, under the rules of cluster.Events.
func StartMesh(rt *service.Runtime, x *exchange.Exchange, cfg cluster.Config, ev cluster.Events) (*Mesh, error) {
	cfg.Meta.Process = rt.ProcessID().String()
	cfg.Meta.Node = rt.Node()
	if cfg.Meta.Exchange == "" {
		cfg.Meta.Exchange = x.Addr()
	}
	cfg.Meta.Group = x.Group()
	cfg.Meta.Role = cluster.RoleServer
	if cfg.Meta.Protocol == 0 {
		cfg.Meta.Protocol = connection.Protocol
	}
	log := cfg.Logger
	if log == nil {
		log = rt.Logger()
	}
	m := &Mesh{x: x, ev: ev, self: rt.ProcessID(), addr: cfg.Meta.Exchange, group: x.Group(), log: log,
		peers: map[string]cluster.Member{}, dialed: map[string]string{}, dead: map[string]bool{}}
	c, err := cluster.Start(cfg, m)
	if err != nil {
		return nil, err
	}
	m.c = c
	return m, nil
}

// MemberUp links to a same-group server, when this node is the one to dial.
func (m *Mesh) MemberUp(mb cluster.Member) {
	if m.ev != nil {
		defer m.ev.MemberUp(mb)
	}
	meshed := mb.Meta.Role == cluster.RoleServer && mb.Meta.Group == m.group && mb.Meta.Exchange != ""
	if !meshed {
		m.memberDown(mb, "no longer a server of group "+groupLabel(m.group))
		return
	}
	if mb.Meta.Exchange == m.addr {
		// An earlier run of this node, killed and not yet declared dead:
		// its address is this node's own now. Dialling it would only
		// link this node to itself.
		m.log.Debug("ignoring a member at this node's own exchange address", "member", mb.Name, "exchange", mb.Meta.Exchange)
		return
	}
	p, err := registry.ParseProcessID(mb.Meta.Process)
	if err != nil {
		m.log.Warn("ignoring member with a bad process id", "member", mb.Name, "error", err)
		return
	}
	m.mu.Lock()
	_, known := m.peers[mb.Name]
	m.peers[mb.Name] = mb
	prev := m.dialed[mb.Name]
	dial := m.self < p && prev != mb.Meta.Exchange
	if dial {
		m.dialed[mb.Name] = mb.Meta.Exchange
	}
	back := m.dead[mb.Name]
	delete(m.dead, mb.Name)
	m.mu.Unlock()
	m.x.Alive(p)
	if dial {
		if prev != "" {
			m.x.Undial(prev)
		}
		m.x.Dial(mb.Meta.Exchange)
	} else if back {
		// The peer dials, but may never have seen this node drop it.
		m.x.DialOnce(p, mb.Meta.Exchange)
	}
	if !known {
		m.log.Debug("cluster member up", "member", mb.Name, "exchange", mb.Meta.Exchange, "dial", m.self < p)
	}
}

// MemberDown stops dialling a member that left or died; a dead one's
// link is closed at once, a leaving one's stays until its bye.
func (m *Mesh) MemberDown(mb cluster.Member, reason string) {
	m.memberDown(mb, reason)
	if m.ev != nil {
		m.ev.MemberDown(mb, reason)
	}
}

func (m *Mesh) memberDown(mb cluster.Member, reason string) {
	m.mu.Lock()
	_, known := m.peers[mb.Name]
	delete(m.peers, mb.Name)
	addr := m.dialed[mb.Name]
	delete(m.dialed, mb.Name)
	if reason == cluster.ReasonDead && known {
		if len(m.dead) >= maxDead {
			clear(m.dead)
		}
		m.dead[mb.Name] = true
	}
	for _, other := range m.dialed {
		if other == addr {
			// A newer member has the address: the node restarted on
			// the same port, and its MemberUp came first. Its dial
			// target is the same; keep it.
			addr = ""
			break
		}
	}
	m.mu.Unlock()
	if !known {
		return
	}
	if addr != "" {
		m.x.Undial(addr)
	}
	if reason == cluster.ReasonLeft {
		// A member that left drains first and says bye on its links:
		// they stay until then, carrying the last answers (rule 11).
		m.log.Debug("cluster member left", "member", mb.Name)
		return
	}
	if p, err := registry.ParseProcessID(mb.Meta.Process); err == nil {
		m.x.Forget(p, "cluster member "+mb.Name+" "+reason)
	}
	m.log.Debug("cluster member down", "member", mb.Name, "reason", reason)
}

// maxDead bounds the members remembered as declared dead.
const maxDead = 1024

// Peers returns the same-group servers this node meshes with.
func (m *Mesh) Peers() []cluster.Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]cluster.Member, 0, len(m.peers))
	for _, mb := range m.peers {
		out = append(out, mb)
	}
	return out
}

// Cluster returns the gossip member underneath.
func (m *Mesh) Cluster() *cluster.Cluster { return m.c }

// Members returns every compatible member of the gossip cluster.
func (m *Mesh) Members() []cluster.Member { return m.c.Members() }

// Leave leaves the cluster gracefully, so the peers drop this node at
// once, then stops gossiping.
func (m *Mesh) Leave(timeout time.Duration) error { return m.c.Leave(timeout) }

// Shutdown stops gossiping without leaving, as a crash would.
func (m *Mesh) Shutdown() error { return m.c.Shutdown() }

func groupLabel(g string) string {
	if g == "" {
		return `""`
	}
	return g
}
