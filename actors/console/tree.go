package console

// GET /api/tree: the live actor tree, built from the kernel's Tree.

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// TreeNode is one actor of GET /api/tree. The root is the node itself
// (pid "node", kind "node"); below it are the runtime's top-level
// actors — registry, services supervisor, exchanges — and below those
// the connections, services and the actors services spawned.
type TreeNode struct {
	Name string `json:"name"`
	PID  string `json:"pid"`
	// Kind is node, registry, supervisor, exchange, connection, service
	// or actor.
	Kind string `json:"kind"`
	// Messages is how many messages the actor handled; Mailbox how many
	// wait in its mailbox. Absent for the node.
	Messages *uint64 `json:"messages,omitempty"`
	Mailbox  *int    `json:"mailbox,omitempty"`
	// Since is when the actor started.
	Since time.Time `json:"since"`
	// Detail holds facts of the actor's kind: a connection's peer and
	// counters, a service's address, audience and groups.
	Detail   map[string]any `json:"detail,omitempty"`
	Children []*TreeNode    `json:"children"`
}

// buildTree builds the live actor tree of a node from its runtime.
func buildTree(n Node) *TreeNode {
	rt := n.Runtime()
	root := &TreeNode{Name: rt.Node(), PID: "node", Kind: registry.KindNode, Since: rt.Kernel().Started(),
		Detail: map[string]any{"process": rt.ProcessID().String(), "listen": n.Addr()}, Children: []*TreeNode{}}
	snap := rt.Kernel().Tree().Snapshot()
	byID := make(map[string]*TreeNode, len(snap))
	for _, a := range snap {
		t := &TreeNode{Name: actorName(a), PID: a.ID, Kind: a.Kind, Messages: &a.Messages, Mailbox: &a.Mailbox,
			Since: a.Since, Detail: a.Detail, Children: []*TreeNode{}}
		if a.Kind == registry.KindService {
			t.Detail = serviceDetail(rt, a)
		}
		byID[a.ID] = t
	}
	for _, a := range snap {
		parent := root
		if p := ancestor(byID, a); p != nil {
			parent = p
		}
		parent.Children = append(parent.Children, byID[a.ID])
	}
	sortTree(root)
	return root
}

// ancestor finds the nearest listed ancestor of a: its parent, or, when
// the parent is not a listed actor, the closest listed prefix of its pid.
func ancestor(byID map[string]*TreeNode, a registry.ActorInfo) *TreeNode {
	if p := byID[a.Parent]; p != nil && a.Parent != a.ID {
		return p
	}
	id := a.ID
	for {
		i := strings.LastIndexByte(id, '/')
		if i <= 0 {
			return nil
		}
		id = id[:i]
		if p := byID[id]; p != nil {
			return p
		}
	}
}

// actorName is what the tree calls an actor: a service by its name, the
// others by the last part of their pid.
func actorName(a registry.ActorInfo) string {
	last := a.ID
	if i := strings.LastIndexByte(last, '/'); i >= 0 {
		last = last[i+1:]
	}
	switch a.Kind {
	case registry.KindService:
		if a.Name == "" {
			return "anonymous"
		}
		return a.Name
	case registry.KindConnection, registry.KindActor:
		if a.Name != "" {
			return a.Name
		}
	}
	return last
}

// serviceDetail adds a service's address and, when it is listed, its
// audience and groups.
func serviceDetail(rt *service.Runtime, a registry.ActorInfo) map[string]any {
	d := map[string]any{}
	for k, v := range a.Detail {
		d[k] = v
	}
	i := strings.LastIndexByte(a.ID, '#')
	if i < 0 {
		return d
	}
	id, err := strconv.ParseUint(a.ID[i+1:], 10, 64)
	if err != nil {
		return d
	}
	addr := service.Address{Process: rt.ProcessID(), ID: id}
	d["address"] = addr.String()
	if b, ok := rt.LookupAddress(addr); ok {
		d["audience"] = b.Audience
		groups := b.Groups
		if groups == nil {
			groups = []string{}
		}
		d["groups"] = groups
	} else {
		d["listed"] = false // anonymous or hidden: a watcher or caller, or not announced yet
	}
	return d
}

// kindOrder puts the runtime's own actors first, in a fixed order.
var kindOrder = map[string]int{registry.KindRegistry: 1, registry.KindSupervisor: 2, registry.KindExchange: 3}

// sortTree orders children by kind (registry, services, exchanges
// first), then start time, then pid.
func sortTree(t *TreeNode) {
	rank := func(n *TreeNode) int {
		if r, ok := kindOrder[n.Kind]; ok {
			return r
		}
		return 10
	}
	sort.SliceStable(t.Children, func(i, j int) bool {
		a, b := t.Children[i], t.Children[j]
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		if !a.Since.Equal(b.Since) {
			return a.Since.Before(b.Since)
		}
		return a.PID < b.PID
	})
	for _, c := range t.Children {
		sortTree(c)
	}
}
