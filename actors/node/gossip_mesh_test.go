package node_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/cluster"
	"github.com/netsvc-go/netsvc/service"
)

// meshNode is a server node that found its peers by gossip.
type meshNode struct {
	name string
	n    *node.Node
	m    *node.Mesh
}

// startMeshNode starts a server node with a service named after it,
// joining the gossip cluster through seeds (Fast preset, loopback).
func startMeshNode(t *testing.T, name, group string, seeds ...string) *meshNode {
	t.Helper()
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{Name: name, Listen: "127.0.0.1:0", Group: group, Retry: 200 * time.Millisecond,
		Gossip: &cluster.Config{BindAddr: "127.0.0.1:0", Join: seeds, Preset: cluster.Fast}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Runtime().Start(ctx, "svc-"+name, service.SetupFunc(func(a *service.Agent) error {
		a.Export("whoami", func() string { return name })
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	mn := &meshNode{name: name, n: n, m: n.Mesh()}
	t.Cleanup(func() { mn.stop() })
	return mn
}

// stop stops the node as a graceful shutdown does: it drains, leaves
// the cluster and says bye.
func (mn *meshNode) stop() {
	if mn.n != nil {
		mn.n.Stop(context.Background())
		mn.n = nil
	}
}

func (mn *meshNode) gossip() string { return mn.m.Cluster().LocalAddr() }

// sees reports which of the names' services n can call.
func sees(n *node.Node, names ...string) error {
	for _, name := range names {
		if len(n.Runtime().Lookup("svc-"+name)) == 0 {
			return fmt.Errorf("%s does not see svc-%s", n.Runtime().Node(), name)
		}
	}
	return nil
}

func meshLinks(n *node.Node) int {
	k := 0
	for _, l := range n.Links() {
		if l.State == "active" {
			k++
		}
	}
	return k
}

// TestMeshFiveNodes: five servers joining through a chain of seeds form a
// full mesh (one link per pair) with every service visible everywhere in
// under 2 s from the last start.
func TestMeshFiveNodes(t *testing.T) {
	names := []string{"n1", "n2", "n3", "n4", "n5"}
	var nodes []*meshNode
	for i, name := range names {
		var seeds []string
		if i > 0 {
			seeds = []string{nodes[i-1].gossip()}
		}
		nodes = append(nodes, startMeshNode(t, name, "", seeds...))
	}
	begun := time.Now()
	nodetest.WaitFor(t, 2*time.Second, func() error {
		for _, mn := range nodes {
			if err := sees(mn.n, names...); err != nil {
				return err
			}
			if k := meshLinks(mn.n); k != len(names)-1 {
				return fmt.Errorf("%s has %d links, want %d", mn.name, k, len(names)-1)
			}
		}
		return nil
	})
	took := time.Since(begun)
	t.Logf("5-node mesh linked with every service visible everywhere %v after the last start", took)
	// Every service answers from every node.
	for _, mn := range nodes {
		for _, name := range names {
			who, err := service.CallFor[string](context.Background(), mn.n.Runtime(), service.Name("svc-"+name), "whoami")
			if err != nil || who != name {
				t.Fatalf("%s calling svc-%s: %q, %v", mn.name, name, who, err)
			}
		}
	}
}

// TestMeshGracefulLeave: a node that stops (drains, leaves, says bye)
// has its services withdrawn everywhere in under 1 s.
func TestMeshGracefulLeave(t *testing.T) {
	a := startMeshNode(t, "a", "")
	b := startMeshNode(t, "b", "", a.gossip())
	c := startMeshNode(t, "c", "", a.gossip())
	nodetest.WaitFor(t, 5*time.Second, func() error {
		for _, mn := range []*meshNode{a, b, c} {
			if err := sees(mn.n, "a", "b", "c"); err != nil {
				return err
			}
		}
		return nil
	})
	start := time.Now()
	c.stop()
	begun := time.Now()
	nodetest.WaitFor(t, time.Second, func() error {
		for _, mn := range []*meshNode{a, b} {
			if len(mn.n.Runtime().Lookup("svc-c")) != 0 {
				return fmt.Errorf("%s still sees svc-c", mn.name)
			}
		}
		return nil
	})
	took := time.Since(begun)
	t.Logf("gracefully stopped node withdrawn everywhere in %v (%v after Stop began)", took, time.Since(start))
}

// TestMeshDeadMemberDropped: a node whose gossip dies while its TCP links
// stay open (a hung process, a one-way partition) is declared dead by
// memberlist, and its link is closed at once: its services are withdrawn
// everywhere in under 5 s, without waiting for TCP.
func TestMeshDeadMemberDropped(t *testing.T) {
	a := startMeshNode(t, "a", "")
	b := startMeshNode(t, "b", "", a.gossip())
	c := startMeshNode(t, "c", "", a.gossip())
	nodetest.WaitFor(t, 5*time.Second, func() error {
		for _, mn := range []*meshNode{a, b, c} {
			if err := sees(mn.n, "a", "b", "c"); err != nil {
				return err
			}
		}
		return nil
	})
	c.m.Shutdown() // gossip dies without a goodbye; c's exchange still holds its links
	c.m = nil
	begun := time.Now()
	nodetest.WaitFor(t, 5*time.Second, func() error {
		for _, mn := range []*meshNode{a, b} {
			if len(mn.n.Runtime().Lookup("svc-c")) != 0 {
				return fmt.Errorf("%s still sees svc-c", mn.name)
			}
		}
		return nil
	})
	took := time.Since(begun)
	t.Logf("dead member's services withdrawn everywhere in %v", took)
}

// TestMeshRestart: a node killed and started again (a new process of the
// same name) rejoins, and its services reappear everywhere.
func TestMeshRestart(t *testing.T) {
	a := startMeshNode(t, "a", "")
	b := startMeshNode(t, "b", "", a.gossip())
	c := startMeshNode(t, "c", "", a.gossip())
	all := []*meshNode{a, b, c}
	nodetest.WaitFor(t, 5*time.Second, func() error {
		for _, mn := range all {
			if err := sees(mn.n, "a", "b", "c"); err != nil {
				return err
			}
		}
		return nil
	})
	// "Kill": no goodbye, no leave.
	c.m.Shutdown()
	c.m = nil
	c.n.Stop(context.Background())
	c.n = nil
	nodetest.WaitFor(t, 5*time.Second, func() error {
		for _, mn := range []*meshNode{a, b} {
			if len(mn.n.Runtime().Lookup("svc-c")) != 0 {
				return fmt.Errorf("%s still sees svc-c", mn.name)
			}
		}
		return nil
	})
	c2 := startMeshNode(t, "c", "", b.gossip())
	begun := time.Now()
	nodetest.WaitFor(t, 5*time.Second, func() error {
		for _, mn := range []*meshNode{a, b, c2} {
			if err := sees(mn.n, "a", "b", "c"); err != nil {
				return err
			}
			if k := meshLinks(mn.n); k != 2 {
				return fmt.Errorf("%s has %d links, want 2", mn.name, k)
			}
		}
		return nil
	})
	took := time.Since(begun)
	t.Logf("restarted node linked and visible everywhere in %v", took)
}

// TestMeshTwoGroups: servers of two exchange groups sharing one gossip
// cluster form two separate meshes; no service crosses between them.
func TestMeshTwoGroups(t *testing.T) {
	x1 := startMeshNode(t, "x1", "")
	x2 := startMeshNode(t, "x2", "", x1.gossip())
	y1 := startMeshNode(t, "y1", "backend", x1.gossip())
	y2 := startMeshNode(t, "y2", "backend", y1.gossip())
	nodetest.WaitFor(t, 5*time.Second, func() error {
		for _, mn := range []*meshNode{x1, x2, y1, y2} {
			if got := len(mn.m.Members()); got != 4 {
				return fmt.Errorf("%s sees %d members, want 4", mn.name, got)
			}
		}
		for _, pair := range [][2]*meshNode{{x1, x2}, {y1, y2}} {
			for i, mn := range pair {
				if err := sees(mn.n, pair[1-i].name); err != nil {
					return err
				}
				if k := meshLinks(mn.n); k != 1 {
					return fmt.Errorf("%s has %d links, want 1", mn.name, k)
				}
			}
		}
		return nil
	})
	// Everyone hears everyone on the gossip, yet nothing crosses groups.
	for _, mn := range []*meshNode{x1, x2} {
		if err := sees(mn.n, "y1"); err == nil {
			t.Fatalf("%s sees a service of the other group", mn.name)
		}
	}
	for _, mn := range []*meshNode{y1, y2} {
		if err := sees(mn.n, "x1"); err == nil {
			t.Fatalf("%s sees a service of the other group", mn.name)
		}
	}
	var peers []string
	for _, p := range y1.m.Peers() {
		peers = append(peers, p.Meta.Node)
	}
	sort.Strings(peers)
	if fmt.Sprint(peers) != "[y2]" {
		t.Fatalf("y1 meshes with %v, want [y2]", peers)
	}
}
