package node_test

import (
	"fmt"
	"net"
	"testing"

	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/service"
)

// TestClientFailover: a client given several servers links to one at a
// time: the first it can reach, then another when that one goes. It is
// never linked to two at once (its bindings would go round the mesh).
func TestClientFailover(t *testing.T) {
	// A port nobody listens on first, then two meshed servers.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	a := startNode(t, "a", serverX("", listen(t)))
	b := startNode(t, "b", serverX("", listen(t), a.Addr()))
	startMath(t, a, "math")
	c := startNode(t, "c", clientX("", deadAddr, b.Addr(), a.Addr()))
	visible(t, c, "math", 1)
	mustMultiply(t, c, service.Name("math"))
	links := func() (int, string) {
		n, peer := 0, ""
		for _, l := range c.Links() {
			if l.State == "active" {
				n++
				peer = l.RemoteNode
			}
		}
		return n, peer
	}
	if n, peer := links(); n != 1 || peer != "b" {
		t.Fatalf("client links: %d, to %q; want 1, to b (the first that answers)", n, peer)
	}
	// b goes: the client moves on to a.
	b.stop(t)
	nodetest.WaitFor(t, waitLong, func() error {
		if n, peer := links(); n != 1 || peer != "a" {
			return fmt.Errorf("client links: %d, to %q; want 1, to a", n, peer)
		}
		return nil
	})
	visible(t, c, "math", 1)
	mustMultiply(t, c, service.Name("math"))
}
