// Package nodetest starts netsvc nodes in tests, as net/http/httptest
// starts servers: on loopback, on free ports, stopped when the test
// ends, with a helper to wait for a condition within a deadline instead
// of sleeping.
//
//	func TestOrders(t *testing.T) {
//		srv := nodetest.Server(t, "srv")
//		if _, err := srv.Runtime().Start(ctx, "orders", orders.New()); err != nil {
//			t.Fatal(err)
//		}
//		cli := nodetest.Client(t, "cli", srv.Addr())
//		got, err := service.CallFor[int](ctx, cli.Runtime(), service.Name("orders"), "count")
//		...
//	}
package nodetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/node"
)

// Wait bounds the waits of this package: long enough for a loaded
// machine running tests with -race, short enough that a hang fails fast.
const Wait = 10 * time.Second

// Start starts a node from cfg and stops it when the test ends (Close:
// no drain, so tests end fast; call Stop yourself to test a drain).
func Start(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start node %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// Server starts a server node with node.TestConfig(name): loopback,
// free ports, the console on, gossip with the Fast preset joining seeds
// (gossip addresses, such as another server's Mesh().Cluster().LocalAddr()).
func Server(t testing.TB, name string, seeds ...string) *node.Node {
	t.Helper()
	cfg := node.TestConfig(name)
	cfg.Gossip.Join = seeds
	return Start(t, cfg)
}

// Cluster starts size servers (name-1, name-2, ...) that find each other
// by gossip, and returns once each is linked to all the others.
func Cluster(t testing.TB, name string, size int) []*node.Node {
	t.Helper()
	nodes := make([]*node.Node, 0, size)
	for i := range size {
		var seeds []string
		if i > 0 {
			seeds = []string{nodes[0].Mesh().Cluster().LocalAddr()}
		}
		nodes = append(nodes, Server(t, fmt.Sprintf("%s-%d", name, i+1), seeds...))
	}
	WaitFor(t, Wait, func() error {
		for _, n := range nodes {
			linked := 0
			for _, l := range n.Links() {
				if l.State == "active" && l.Synced {
					linked++
				}
			}
			if linked != size-1 {
				return fmt.Errorf("%s has %d synced links, want %d", n.Runtime().Node(), linked, size-1)
			}
		}
		return nil
	})
	return nodes
}

// Client starts a client process linked to one of servers (the first
// that accepts it), with the registry synced, as node.Connect does.
func Client(t testing.TB, name string, servers ...string) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	n, err := node.Connect(ctx, node.Config{Name: name, Servers: servers, Retry: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("client %s: %v", name, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// WaitFor calls cond until it returns nil, and fails the test with
// cond's last error once timeout has passed.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("still after %v: %v", timeout, err)
		}
	}
}
