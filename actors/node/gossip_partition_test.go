package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/cluster"
	"github.com/netsvc-go/netsvc/cluster/clustertest"
	"github.com/netsvc-go/netsvc/service"
)

// A mesh whose gossip is cut between {a} and {b, c} closes the links
// across the cut (each side declares the other dead) and withdraws the
// other side's services; once the gossip heals, reconnecting reports
// the members up again and the mesh dials them: one link per pair and
// every service callable everywhere, within a few seconds. (Only gossip
// is cut here; the exchange links would get through, so what relinks
// them is the MemberUp of the member that came back.)
func TestMeshRelinksAfterPartition(t *testing.T) {
	pn := clustertest.NewNetwork()
	type meshNode struct {
		name string
		n    *node.Node
		m    *node.Mesh
	}
	start := func(name string, seeds ...string) *meshNode {
		t.Helper()
		ctx := context.Background()
		n, err := node.Start(ctx, node.Config{Name: name, Exchanges: []exchange.Config{
			{Role: registry.RoleServer, Listen: "127.0.0.1:0", Retry: 200 * time.Millisecond}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Stop(context.Background()) })
		if _, err := n.Runtime().Start(ctx, "svc-"+name, service.SetupFunc(func(a *service.Agent) error {
			a.Export("whoami", func() string { return name })
			return nil
		})); err != nil {
			t.Fatal(err)
		}
		m, err := node.StartMesh(n.Runtime(), n.Exchange(""), cluster.Config{BindAddr: "127.0.0.1:0", Join: seeds, Preset: cluster.Fast,
			WrapTransport: pn.Wrap}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Shutdown() })
		return &meshNode{name: name, n: n, m: m}
	}
	a := start("a")
	b := start("b", a.m.Cluster().LocalAddr())
	c := start("c", b.m.Cluster().LocalAddr())
	all := []*meshNode{a, b, c}
	// seesOnly checks that mn has one active link to each of peers, and
	// nothing else, and can call exactly their services and its own.
	seesOnly := func(mn *meshNode, peers ...*meshNode) error {
		linked := map[string]int{}
		for _, l := range mn.n.Links() {
			if l.State == "active" {
				linked[l.RemoteNode]++
			}
		}
		want := map[string]bool{mn.name: true}
		for _, p := range peers {
			want[p.name] = true
			if linked[p.name] != 1 {
				return fmt.Errorf("%s has %d links to %s", mn.name, linked[p.name], p.name)
			}
		}
		if len(linked) != len(peers) {
			return fmt.Errorf("%s has links to %v, want only to %d peers", mn.name, linked, len(peers))
		}
		for _, o := range all {
			n := 0
			if want[o.name] {
				n = 1
			}
			if got := len(mn.n.Runtime().Lookup("svc-" + o.name)); got != n {
				return fmt.Errorf("%s sees svc-%s %d times, want %d", mn.name, o.name, got, n)
			}
		}
		return nil
	}
	whole := func() error {
		for _, mn := range all {
			var peers []*meshNode
			for _, o := range all {
				if o != mn {
					peers = append(peers, o)
				}
			}
			if err := seesOnly(mn, peers...); err != nil {
				return err
			}
		}
		return nil
	}
	nodetest.WaitFor(t, 5*time.Second, whole)

	pn.Cut([]string{a.m.Cluster().LocalAddr()}, []string{b.m.Cluster().LocalAddr(), c.m.Cluster().LocalAddr()})
	cut := time.Now()
	nodetest.WaitFor(t, 5*time.Second, func() error {
		if err := seesOnly(a); err != nil {
			return err
		}
		if err := seesOnly(b, c); err != nil {
			return err
		}
		return seesOnly(c, b)
	})
	t.Logf("cut: links across closed and services withdrawn after %v", time.Since(cut).Round(time.Millisecond))
	time.Sleep(2*time.Second - time.Since(cut)) // the length of the cut, not a synchronisation

	pn.Heal()
	healed := time.Now()
	nodetest.WaitFor(t, 5*time.Second, whole)
	t.Logf("heal: full mesh and every service back after %v", time.Since(healed).Round(time.Millisecond))
	for _, mn := range all {
		for _, o := range all {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			who, err := service.CallFor[string](ctx, mn.n.Runtime(), service.Name("svc-"+o.name), "whoami")
			cancel()
			if err != nil || who != o.name {
				t.Errorf("%s calling svc-%s: %q, %v", mn.name, o.name, who, err)
			}
		}
	}
}
