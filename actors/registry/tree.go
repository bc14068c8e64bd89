package registry

// The live actor tree the console shows, kept by a wrapper every actor
// of the runtime runs in.

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Kinds of actors in the tree.
const (
	KindNode       = "node"
	KindRegistry   = "registry"
	KindSupervisor = "supervisor"
	KindService    = "service"
	KindExchange   = "exchange"
	KindConnection = "connection"
	KindActor      = "actor" // a plain actor a service spawned
)

// Tree is the live actor tree of a runtime: every actor the runtime,
// the exchange or a service started, recorded as it starts and removed as
// it stops. The console reads it; nothing on the message path does.
type Tree struct {
	mu     sync.RWMutex
	actors map[string]*actorRecord
}

type actorRecord struct {
	id, parent, kind, name string
	since                  time.Time
	messages               atomic.Uint64
	mailbox                actor.Mailbox
	detail                 atomic.Value // func() map[string]any, optional
}

// ActorInfo is one actor in a Tree snapshot.
type ActorInfo struct {
	ID       string         `json:"pid"`
	Parent   string         `json:"parent,omitempty"`
	Kind     string         `json:"kind"`
	Name     string         `json:"name"`
	Since    time.Time      `json:"since"`
	Messages uint64         `json:"messages"`
	Mailbox  int            `json:"mailbox"`
	Detail   map[string]any `json:"detail,omitempty"`
}

func newTree() *Tree { return &Tree{actors: map[string]*actorRecord{}} }

// Snapshot lists the live actors, parents before children.
func (t *Tree) Snapshot() []ActorInfo {
	t.mu.RLock()
	out := make([]ActorInfo, 0, len(t.actors))
	for _, r := range t.actors {
		info := ActorInfo{ID: r.id, Parent: r.parent, Kind: r.kind, Name: r.name, Since: r.since, Messages: r.messages.Load()}
		if r.mailbox != nil {
			info.Mailbox = r.mailbox.UserMessageCount()
		}
		if f, ok := r.detail.Load().(func() map[string]any); ok && f != nil {
			info.Detail = f()
		}
		out = append(out, info)
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Props builds props for an actor that shows in the tree with a kind and
// a name, counting the messages it handles and exposing its mailbox depth.
// detail, when not nil, is called by the console for actor-specific facts
// and must be safe to call from any goroutine.
func (rt *Kernel) Props(kind, name string, producer actor.Producer, detail func() map[string]any) *actor.Props {
	return rt.trackedProps(kind, name, producer, detail, nil)
}

func (rt *Kernel) props(kind, name string, producer actor.Producer) *actor.Props {
	return rt.trackedProps(kind, name, producer, nil, nil)
}

// trackedProps builds tracked props; mailbox, when not nil, makes the
// actor's mailbox (services have their own, see serviceMailbox), else
// it is protoactor's unbounded one.
func (rt *Kernel) trackedProps(kind, name string, producer actor.Producer, detail func() map[string]any, mailbox actor.MailboxProducer) *actor.Props {
	rec := &actorRecord{kind: kind, name: name}
	if detail != nil {
		rec.detail.Store(detail)
	}
	if mailbox == nil {
		mailbox = actor.Unbounded()
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &trackedActor{tree: rt.tree, rec: rec, inner: producer()}
	}, actor.WithMailbox(func() actor.Mailbox {
		mb := mailbox()
		rec.mailbox = mb
		return mb
	}), actor.WithDispatcher(rt.dispatcher))
}

// trackedActor records its inner actor in the tree and counts messages.
type trackedActor struct {
	tree  *Tree
	rec   *actorRecord
	inner actor.Actor
}

func (a *trackedActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		a.rec.id = ctx.Self().Id
		if p := ctx.Parent(); p != nil {
			a.rec.parent = p.Id
		}
		a.rec.since = time.Now()
		a.tree.mu.Lock()
		a.tree.actors[a.rec.id] = a.rec
		a.tree.mu.Unlock()
	case *actor.Stopped:
		a.tree.mu.Lock()
		delete(a.tree.actors, a.rec.id)
		a.tree.mu.Unlock()
	default:
		a.rec.messages.Add(1)
	}
	a.inner.Receive(ctx)
}
