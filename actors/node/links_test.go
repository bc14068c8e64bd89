package node_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// startMutual starts two servers that each connect to the other, each
// hosting a service.
func startMutual(t *testing.T) (a, b *proc) {
	lnA, lnB := listen(t), listen(t)
	a = startNode(t, "a", serverX("", lnA, lnB.Addr().String()))
	b = startNode(t, "b", serverX("", lnB, lnA.Addr().String()))
	startMath(t, a, "a-svc")
	startMath(t, b, "b-svc")
	return a, b
}

// mutualSettled reports whether a and b, each connecting to the other,
// settled on one link: one active link each, dialled by the process with
// the smaller id, whose target shows it linked. It returns the two
// sides' link ids.
func mutualSettled(a, b *proc) (idA, idB string, err error) {
	dir := map[bool]string{true: "out", false: "in"}
	smallerA := a.pid() < b.pid()
	la, lb := activeLinks(a, 0), activeLinks(b, 0) // one snapshot each
	if len(la) != 1 || la[0].RemoteProcess != b.pid() || len(lb) != 1 || lb[0].RemoteProcess != a.pid() {
		return "", "", fmt.Errorf("active links: a %+v, b %+v; want one each, to the other", la, lb)
	}
	if la[0].Direction != dir[smallerA] || lb[0].Direction != dir[!smallerA] {
		return "", "", fmt.Errorf("a keeps its %q link, b its %q link; a<b: %v", la[0].Direction, lb[0].Direction, smallerA)
	}
	winner := a
	if !smallerA {
		winner = b
	}
	if ts := winner.x("").Targets(); len(ts) != 1 || ts[0].State != "linked" {
		return "", "", fmt.Errorf("%s's target: %+v; want state linked", winner.name, ts)
	}
	return la[0].ID, lb[0].ID, nil
}

// TestMutualConnect is OSE scenario 12 and rule 10: two servers
// that each connect to the other end with exactly one active link on
// each side, the one dialled by the process with the smaller id, the
// same one for as long as they run, and no binding twice in either
// registry.
func TestMutualConnect(t *testing.T) {
	for i := 0; i < 3; i++ {
		t.Run(fmt.Sprint("run", i), func(t *testing.T) {
			a, b := startMutual(t)
			var idA, idB string
			nodetest.WaitFor(t, waitLong, func() (err error) {
				idA, idB, err = mutualSettled(a, b)
				return err
			})
			// Stays so: several retry delays later it is the same link on
			// both sides.
			holdFor(t, 5*retry, func() error {
				ida, idb, err := mutualSettled(a, b)
				if err != nil {
					return err
				}
				if ida != idA || idb != idB {
					return fmt.Errorf("links %s/%s, were %s/%s", ida, idb, idA, idB)
				}
				return nil
			})
			visible(t, a, "b-svc", 1)
			visible(t, b, "a-svc", 1)
		})
	}
}

// TestMutualConnectNoChurn checks that after a mutual connect nobody
// keeps dialling: each side has one connection, and the losing
// dialler's target says "duplicate" and makes no more attempts
// (rule 10).
func TestMutualConnectNoChurn(t *testing.T) {
	for i := 0; i < 10; i++ {
		t.Run(fmt.Sprint("run", i), func(t *testing.T) {
			a, b := startMutual(t)
			loser := b
			if b.pid() < a.pid() {
				loser = a
			}
			settled := func() error {
				if _, _, err := mutualSettled(a, b); err != nil {
					return err
				}
				for _, p := range []*proc{a, b} {
					if ls := p.Links(); len(ls) != 1 {
						return fmt.Errorf("%s has %d connections: %+v", p.name, len(ls), ls)
					}
				}
				if ts := loser.x("").Targets(); len(ts) != 1 || ts[0].State != "duplicate" {
					return fmt.Errorf("%s's target: %+v; want state duplicate", loser.name, ts)
				}
				return nil
			}
			nodetest.WaitFor(t, waitLong, settled)
			attempts := loser.x("").Targets()[0].Attempts
			holdFor(t, 5*retry, func() error {
				if err := settled(); err != nil {
					return err
				}
				if n := loser.x("").Targets()[0].Attempts; n != attempts {
					return fmt.Errorf("%s dialled again: %d attempts, were %d", loser.name, n, attempts)
				}
				return nil
			})
			// Each side closed at most one duplicate: nobody redialled.
			for _, p := range []*proc{a, b} {
				if l := p.logs.lines("closing the duplicate link"); len(l) > 1 {
					t.Errorf("%s closed %d duplicate links:\n%s", p.name, len(l), strings.Join(l, "\n"))
				}
			}
		})
	}
}

// TestMutualConnectRoutes checks that after a mutual connect each side
// routes to the other over the link that survived, so calls work both
// ways (rule 10, and rule 23 for the surviving link).
func TestMutualConnectRoutes(t *testing.T) {
	for i := 0; i < 10; i++ {
		t.Run(fmt.Sprint("run", i), func(t *testing.T) {
			a, b := startMutual(t)
			routed := func(p, peer *proc, name string) error {
				ls := p.Links()
				if len(ls) != 1 || ls[0].State != "active" {
					return fmt.Errorf("%s's links: %+v", p.name, ls)
				}
				bs := p.rt().Lookup(name)
				if len(bs) != 1 || bs[0].Link != ls[0].ID {
					return fmt.Errorf("%s's bindings of %s: %+v; want one, through the surviving link %s", p.name, name, bs, ls[0].ID)
				}
				for _, pi := range p.rt().Kernel().Processes() {
					if pi.ID == peer.pid() && pi.Link != ls[0].ID {
						return fmt.Errorf("%s routes to %s over %s, the surviving link is %s", p.name, peer.name, pi.Link, ls[0].ID)
					}
				}
				return nil
			}
			nodetest.WaitFor(t, 2*time.Second, func() error {
				if err := routed(a, b, "b-svc"); err != nil {
					return err
				}
				return routed(b, a, "a-svc")
			})
			mustMultiply(t, a, service.Name("b-svc"))
			mustMultiply(t, b, service.Name("a-svc"))
		})
	}
}

// freeAddr returns a loopback address free a moment ago, below the
// ephemeral range (nodetest.FreePorts), for a node started or restarted
// there later.
func freeAddr(t *testing.T) string {
	t.Helper()
	ps, err := nodetest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ps[0])
}

// listenOn listens on addr, retrying for a moment while the port is
// still held by a listener that is closing.
func listenOn(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	nodetest.WaitFor(t, waitLong, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestClientRetries is OSE scenario 13 and rule 11: a client
// started before its server dials every retry delay until the server is
// there, links up, loses the link when the server stops, and links to
// the restarted server on the same port; observers see each link go up
// and down.
func TestClientRetries(t *testing.T) {
	addr := freeAddr(t)
	c := startNode(t, "c", clientX("", addr))
	links := watchLinks(c.x(""))
	workers := watch(t, c, service.Name("math"))

	// Nobody there: it keeps trying, every retry delay.
	start := time.Now()
	nodetest.WaitFor(t, waitLong, func() error {
		ts := c.x("").Targets()
		if len(ts) != 1 || ts[0].Attempts < 4 || ts[0].State == "linked" {
			return fmt.Errorf("targets %+v; want 4 attempts or more", ts)
		}
		return nil
	})
	if d := time.Since(start); d > 20*retry {
		t.Errorf("4 attempts took %v with a retry delay of %v", d, retry)
	}
	if got := links.upDown(0); got != "" {
		t.Fatalf("link events with no server: %q", got)
	}

	x1 := startNode(t, "x1", serverX("", listenOn(t, addr)))
	startMath(t, x1, "math")
	start = time.Now()
	linkedTo(t, c, x1)
	if d := time.Since(start); d > 20*retry {
		t.Errorf("linking took %v after the server started, with a retry delay of %v", d, retry)
	}
	visible(t, c, "math", 1)
	mustMultiply(t, c, service.Name("math"))
	nodetest.WaitFor(t, waitLong, func() error {
		if got := links.upDown(x1.pid()); got != "up" {
			return fmt.Errorf("link events for x1: %q, want \"up\"", got)
		}
		return nil
	})

	x1.stop(t)
	workers.waitFor(t, service.Withdrawn, "math")
	nodetest.WaitFor(t, waitLong, func() error {
		if got := links.upDown(x1.pid()); got != "up down" {
			return fmt.Errorf("link events for x1: %q, want \"up down\"", got)
		}
		return nil
	})
	visible(t, c, "math", 0)

	// The same port again, a new process: the client comes back by itself.
	x2 := startNode(t, "x2", serverX("", listenOn(t, addr)))
	startMath(t, x2, "math")
	start = time.Now()
	linkedTo(t, c, x2)
	if d := time.Since(start); d > 20*retry {
		t.Errorf("relinking took %v after the restart, with a retry delay of %v", d, retry)
	}
	b := visible(t, c, "math", 1)[0]
	if b.Address.Process != x2.pid() {
		t.Fatalf("math after the restart is %v, want a service of the new process %v", b.Address, x2.pid())
	}
	mustMultiply(t, c, service.Name("math"))
	nodetest.WaitFor(t, waitLong, func() error {
		if got := links.upDown(0); got != "up down up" {
			return fmt.Errorf("link events: %q, want \"up down up\"", got)
		}
		return nil
	})
	if ts := c.x("").Targets(); len(ts) != 1 || ts[0].State != "linked" {
		t.Fatalf("target after relinking: %+v", ts)
	}
}

// TestServerConnectRetries checks rule 11 for a server's static
// connect: the server keeps redialling a peer server that goes away and
// relinks when it is back on the same port.
func TestServerConnectRetries(t *testing.T) {
	addr := freeAddr(t)
	a := startNode(t, "a", serverX("", listen(t), addr))
	links := watchLinks(a.x(""))
	b1 := startNode(t, "b1", serverX("", listenOn(t, addr)))
	startMath(t, b1, "math")
	linkedTo(t, a, b1)
	visible(t, a, "math", 1)
	b1.stop(t)
	visible(t, a, "math", 0)
	b2 := startNode(t, "b2", serverX("", listenOn(t, addr)))
	startMath(t, b2, "math")
	linkedTo(t, a, b2)
	if b := visible(t, a, "math", 1)[0]; b.Address.Process != b2.pid() {
		t.Fatalf("math after the restart is %v, want a service of the new process %v", b.Address, b2.pid())
	}
	mustMultiply(t, a, service.Name("math"))
	nodetest.WaitFor(t, waitLong, func() error {
		want := "up down"
		if got := links.upDown(b1.pid()); got != want {
			return fmt.Errorf("link events for b1: %q, want %q", got, want)
		}
		if got := links.upDown(b2.pid()); got != "up" {
			return fmt.Errorf("link events for b2: %q, want \"up\"", got)
		}
		return nil
	})
}

// TestDuplicateLinkAnnouncementsDropped checks that what arrives on a
// link the duplicate rule refuses never enters the registry, or leaves
// with the link: a peer already linked dials again and announces a
// service on the second connection at once; the exchange keeps the first
// connection (dialled by the smaller process id) and closes the second.
// The service must not stay in the registry routed over the closed one.
func TestDuplicateLinkAnnouncementsDropped(t *testing.T) {
	ln := listen(t)
	x := startNode(t, "x", serverX("", listen(t), ln.Addr().String()))
	const peer = service.ProcessID(1<<64 - 1) // larger than any: x's dial survives

	// The first connection: x dials the fake peer, a server.
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	first := &rawPeer{t: t, c: nc, r: bufio.NewReader(nc), pid: peer}
	t.Cleanup(func() { nc.Close() })
	first.acceptHandshake(connection.Hello{Role: registry.RoleServer})
	first.readUntilSynced()
	first.announce("real", 1)
	visible(t, x, "real", 1)

	// The second connection, dialled by the peer, announcing at once.
	second := dialRaw(t, x.Addr())
	second.pid = peer
	if _, err := second.tryHandshake(connection.Hello{Role: registry.RoleServer}); err != nil {
		t.Fatal(err)
	}
	second.announce("ghost", 2)
	second.readUntilClosed(5 * time.Second)
	nodetest.WaitFor(t, waitLong, func() error {
		if l := x.logs.lines("closing the duplicate link"); len(l) == 0 {
			return fmt.Errorf("x did not close the duplicate")
		}
		return nil
	})
	if ls := activeLinks(x, peer); len(ls) != 1 || ls[0].Direction != "out" {
		t.Fatalf("x's links to the peer: %+v; want its own dial only", ls)
	}
	nodetest.WaitFor(t, 2*time.Second, func() error {
		for _, b := range x.rt().Lookup("ghost") {
			if l := activeLinks(x, peer); len(l) == 1 && b.Link != l[0].ID {
				return fmt.Errorf("ghost is routed over %s, a link that was closed; the link is %s", b.Link, l[0].ID)
			}
		}
		for _, p := range x.rt().Kernel().Processes() {
			if l := activeLinks(x, peer); p.ID == peer && len(l) == 1 && p.Link != l[0].ID {
				return fmt.Errorf("x routes to the peer over %s, a link that was closed; the link is %s", p.Link, l[0].ID)
			}
		}
		return nil
	})
}

// TestRefusedDialBacksOff checks rule 11 for a dial the peer
// refuses (here a wrong token): the dialler tries again, but each delay
// doubles, from the retry delay up to a minute, rather than hammering the
// peer every retry delay or giving up for good.
func TestRefusedDialBacksOff(t *testing.T) {
	xc := serverX("", listen(t))
	xc.Tokens = []string{"right"}
	x := startNode(t, "x", xc)
	cc := clientX("", x.Addr())
	cc.Tokens = []string{"wrong"}
	c := startNode(t, "c", cc)
	nodetest.WaitFor(t, waitLong, func() error {
		if ts := c.x("").Targets(); len(ts) != 1 || ts[0].State != "rejected" {
			return fmt.Errorf("targets %+v; want rejected", ts)
		}
		return nil
	})
	first := c.x("").Targets()[0].Attempts
	// 15 retry delays: a fixed delay would try about 15 times more; a
	// doubling one 1, 2, 4, 8 delays on: at most 4 (5 with jitter).
	window := time.NewTimer(15 * retry)
	defer window.Stop()
	<-window.C // the observation window itself, not a synchronisation
	got := c.x("").Targets()[0].Attempts - first
	if got < 1 || got > 5 {
		t.Fatalf("%d more attempts in %v with a %v retry delay; want a few, each delay twice the last", got, 15*retry, retry)
	}
}

// TestRefusedDialHealsWhenFixed checks that a client refused by a
// server (a token it does not know) links by itself once the server is
// fixed, without a restart (rule 11).
func TestRefusedDialHealsWhenFixed(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	xc := serverX("", ln)
	xc.Tokens = []string{"old"}
	x := startNode(t, "x", xc)
	startMath(t, x, "math")
	cc := clientX("", addr)
	cc.Tokens = []string{"new"}
	c := startNode(t, "c", cc)
	nodetest.WaitFor(t, waitLong, func() error {
		if ts := c.x("").Targets(); len(ts) != 1 || ts[0].State != "rejected" {
			return fmt.Errorf("targets %+v; want rejected", ts)
		}
		return nil
	})
	x.stop(t)
	ln2, err := net.Listen("tcp", addr) // the fixed server, on the same address
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln2.Close() })
	fixed := serverX("", ln2)
	fixed.Tokens = []string{"new", "old"}
	y := startNode(t, "y", fixed)
	startMath(t, y, "math")
	visible(t, c, "math", 1)
	mustMultiply(t, c, service.Name("math"))
}

// TestClientLinksOnlyToServers checks rule 11's last words: a
// client endpoint cannot be given a listener, and one that dials a
// client refuses it.
func TestClientLinksOnlyToServers(t *testing.T) {
	cc := clientX("", "127.0.0.1:1")
	cc.Listen = "127.0.0.1:0"
	if _, err := node.Start(context.Background(), node.Config{Name: "c", Exchanges: []exchange.Config{cc}}); err == nil ||
		!strings.Contains(err.Error(), "a client endpoint does not listen") {
		t.Fatalf("a client endpoint with Listen: %v", err)
	}
	ln := listen(t)
	c := startNode(t, "c", clientX("", ln.Addr().String()))
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	fake := &rawPeer{t: t, c: nc, r: bufio.NewReader(nc), pid: registry.NewProcessID()}
	t.Cleanup(func() { nc.Close() })
	_, err = connection.Handshake(nc, connection.HandshakeConfig{Local: fake.fill(connection.Hello{Role: registry.RoleClient})})
	if err == nil || !strings.Contains(err.Error(), "links only to a server") {
		t.Fatalf("a client answering a client's dial: %v", err)
	}
	if l := activeLinks(c, 0); len(l) != 0 {
		t.Fatalf("the client linked to a client: %+v", l)
	}
}

// TestRedialAtOnceWhenAliveAgain is the half-second blip that cost five
// seconds: gossip declares a peer dead (the link is closed at once), then
// sees it alive again while the link is still closing. The link comes
// back at once, not after the retry delay (issue: 5 s of invisibility).
func TestRedialAtOnceWhenAliveAgain(t *testing.T) {
	b := startNode(t, "b", serverX("", listen(t)))
	startMath(t, b, "math")
	ac := serverX("", listen(t), b.Addr())
	ac.Retry = 5 * time.Second // long: the test fails if the retry delay is waited for
	a := startNode(t, "a", ac)
	linkedTo(t, a, b)
	visible(t, a, "math", 1)

	x := a.x("")
	old := activeLinks(a, b.pid())[0].ID
	start := time.Now()
	x.Undial(b.Addr()) // what the mesh does for a member declared dead
	x.Forget(b.pid(), "cluster member b dead")
	x.Alive(b.pid())
	x.Dial(b.Addr()) // ... and for one alive again, moments later
	nodetest.WaitFor(t, 4*time.Second, func() error {
		if l := activeLinks(a, b.pid()); len(l) != 1 || l[0].ID == old {
			return fmt.Errorf("no new link to b yet: %+v", a.Links())
		}
		if len(a.rt().Lookup("math")) != 1 {
			return fmt.Errorf("math not back yet")
		}
		return nil
	})
	t.Logf("linked again %v after the peer was seen alive", time.Since(start).Round(time.Millisecond))
}
