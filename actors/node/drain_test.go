package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/service"
)

// gate is a handler that blocks until released, telling when it started.
type gate struct {
	started chan struct{}
	release chan struct{}
	giveUp  time.Duration // how long slow waits for the release
	runs    atomic.Int64
}

func newGate() *gate {
	return &gate{started: make(chan struct{}, 16), release: make(chan struct{}), giveUp: waitLong}
}

// service exports slow(): it waits for the gate, then answers 42;
// and count(): how many times slow ran.
func (g *gate) service() func(a *service.Agent) error {
	return func(a *service.Agent) error {
		a.Export("slow", func(ctx context.Context) (int, error) {
			g.runs.Add(1)
			select {
			case g.started <- struct{}{}:
			default:
			}
			select {
			case <-g.release:
				return 42, nil
			case <-time.After(g.giveUp):
				return 0, errors.New("never released")
			}
		})
		return nil
	}
}

type callResult struct {
	v   int
	err error
	at  time.Time
}

// callSlow calls slow on to from p in the background.
func callSlow(p *proc, to service.Target) <-chan callResult {
	done := make(chan callResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitLong)
		defer cancel()
		v, err := service.CallFor[int](ctx, p.rt(), to, "slow")
		done <- callResult{v, err, time.Now()}
	}()
	return done
}

// stopInBackground stops p (with its drain) and reports when Stop
// returned, and its error.
func stopInBackground(p *proc) <-chan callResult {
	done := make(chan callResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitLong)
		defer cancel()
		var err error
		p.stopOnce.Do(func() { err = p.Stop(ctx) })
		done <- callResult{err: err, at: time.Now()}
	}()
	return done
}

func draining(p *proc) error {
	if err := p.Ready(); err == nil || err.Error() != "draining" {
		return fmt.Errorf("%s: Ready() = %v, want draining", p.name, err)
	}
	return nil
}

// A request running when its node starts draining completes with its
// result, whether the draining node hosts the service or only relays the
// request; the node stops only after that. (Before the drain, such a
// request failed "withdrawn" about 100 ms after Stop.)
func TestDrainFinishesRunningRequest(t *testing.T) {
	t.Run("the draining node hosts it", func(t *testing.T) {
		s1 := startNode(t, "s1", serverX("", listen(t)))
		s2 := startNode(t, "s2", serverX("", listen(t), s1.Addr()))
		c := startNode(t, "c", clientX("", s2.Addr()))
		g := newGate()
		startService(t, s1, "slow", g.service())
		visible(t, c, "slow", 1)

		call := callSlow(c, service.Name("slow"))
		recv(t, g.started, waitLong, "the request to start")
		stopped := stopInBackground(s1)
		nodetest.WaitFor(t, waitLong, func() error { return draining(s1) })
		// The withdrawal reaches the caller (no new call picks the
		// service), but the call it made is not failed.
		nodetest.WaitFor(t, waitLong, func() error {
			if n := len(c.rt().Lookup("slow")); n != 0 {
				return fmt.Errorf("the caller still sees %d bindings of slow", n)
			}
			return nil
		})
		select {
		case r := <-call:
			t.Fatalf("the running call ended during the drain: %v, %v", r.v, r.err)
		case r := <-stopped:
			t.Fatalf("the node stopped while a request ran: %v", r.err)
		default:
		}
		released := time.Now()
		close(g.release)
		r := recv(t, call, waitLong, "the call to end")
		if r.err != nil || r.v != 42 {
			t.Fatalf("the call during the drain = %v, %v; want 42", r.v, r.err)
		}
		s := recv(t, stopped, waitLong, "Stop to return")
		if s.err != nil {
			t.Fatalf("Stop: %v", s.err)
		}
		t.Logf("the request answered %v after its handler was released; Stop returned %v after that",
			r.at.Sub(released).Round(time.Millisecond), s.at.Sub(r.at).Round(time.Millisecond))
	})

	t.Run("the draining node relays it", func(t *testing.T) {
		s1 := startNode(t, "s1", serverX("", listen(t)))
		s2 := startNode(t, "s2", serverX("", listen(t), s1.Addr()))
		linkedTo(t, s1, s2)
		c := startNode(t, "c", clientX("", s1.Addr())) // no fallback: s1 names s2
		g := newGate()
		startService(t, s2, "slow", g.service())
		visible(t, c, "slow", 1)
		w := watch(t, c, service.Name("slow"))
		w.waitFor(t, service.Available, "slow")

		call := callSlow(c, service.Name("slow"))
		recv(t, g.started, waitLong, "the request to start")
		stopped := stopInBackground(s1)
		// The client moves to s2 while its call waits on s1's link.
		nodetest.WaitFor(t, waitLong, func() error {
			if len(activeLinks(c, s2.pid())) != 1 {
				return errors.New("the client has not linked to s2")
			}
			return nil
		})
		if len(activeLinks(c, s1.pid())) != 1 {
			t.Fatalf("the client let s1's link go with a call waiting on it")
		}
		close(g.release)
		r := recv(t, call, waitLong, "the call to end")
		if r.err != nil || r.v != 42 {
			t.Fatalf("the call relayed by the draining node = %v, %v; want 42", r.v, r.err)
		}
		if s := recv(t, stopped, waitLong, "Stop to return"); s.err != nil {
			t.Fatalf("Stop: %v", s.err)
		}
		nodetest.WaitFor(t, waitLong, func() error {
			if l := activeLinks(c, 0); len(l) != 1 || l[0].RemoteProcess != s2.pid() {
				return fmt.Errorf("client links %+v; want one, to s2", l)
			}
			return nil
		})
		if w.has(service.Withdrawn, "slow") {
			t.Errorf("the client saw slow withdrawn while it moved: %v", w.all())
		}
		mustCall(t, c, service.Name("slow"), g)
	})
}

// mustCall calls slow with the gate open.
func mustCall(t testing.TB, p *proc, to service.Target, g *gate) {
	t.Helper()
	r := recv(t, callSlow(p, to), waitLong, "a call of slow")
	if r.err != nil || r.v != 42 {
		t.Fatalf("call %s = %v, %v; want 42", to, r.v, r.err)
	}
}

// Calls made during a drain go to another instance of the service; one
// that still reaches the draining node by address is answered
// "withdrawn", not run.
func TestDrainSendsCallsElsewhere(t *testing.T) {
	s1 := startNode(t, "s1", serverX("", listen(t)))
	s2 := startNode(t, "s2", serverX("", listen(t), s1.Addr()))
	linkedTo(t, s1, s2)
	c := startNode(t, "c", clientX("", s1.Addr())) // s1's instance is one hop nearer
	g1, g2 := newGate(), newGate()
	close(g2.release)
	a1 := startService(t, s1, "svc", g1.service())
	startService(t, s2, "svc", g2.service())
	visible(t, c, "svc", 2)
	// Hold s1's drain open with a request running there.
	held := callSlow(c, service.Name("svc"))
	recv(t, g1.started, waitLong, "the request to start on s1")
	stopped := stopInBackground(s1)
	nodetest.WaitFor(t, waitLong, func() error { return draining(s1) })
	nodetest.WaitFor(t, waitLong, func() error {
		if l := c.rt().Lookup("svc"); len(l) != 1 || l[0].Address.Process != s2.pid() {
			return fmt.Errorf("the caller sees %+v; want s2's svc only", l)
		}
		return nil
	})
	for i := range 20 {
		r := recv(t, callSlow(c, service.Name("svc")), waitLong, "a call during the drain")
		if r.err != nil || r.v != 42 {
			t.Fatalf("call %d during the drain: %v, %v", i, r.v, r.err)
		}
	}
	if n := g2.runs.Load(); n != 20 {
		t.Errorf("s2's svc ran %d times, want 20", n)
	}
	// By address, the draining instance refuses: not run.
	r := recv(t, callSlow(c, a1), waitLong, "a call by address")
	if code := failureCode(r.err); code != service.CodeWithdrawn {
		t.Errorf("a call by address to the draining svc: %v; want withdrawn", r.err)
	}
	if n := g1.runs.Load(); n != 1 {
		t.Errorf("s1's svc ran %d times during the drain; want only the held request", n)
	}
	close(g1.release)
	if r := recv(t, held, waitLong, "the held call"); r.err != nil {
		t.Fatalf("the held call: %v", r.err)
	}
	if s := recv(t, stopped, waitLong, "Stop"); s.err != nil {
		t.Fatalf("Stop: %v", s.err)
	}
}

// A drain that cannot finish ends at the drain timeout: the node stops
// anyway, and the call still waiting fails. (The node waits for the
// handler itself to return, up to the runtime's StopTimeout.)
func TestDrainTimeout(t *testing.T) {
	n, err := node.Start(context.Background(), node.Config{Name: "n", DrainTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{Node: n, name: "n", logs: &logBuf{}}
	t.Cleanup(func() { p.close(t) })
	g := newGate() // never released
	g.giveUp = time.Second
	startService(t, p, "slow", g.service())
	call := callSlow(p, service.Name("slow"))
	recv(t, g.started, waitLong, "the request to start")
	begun := time.Now()
	s := recv(t, stopInBackground(p), waitLong, "Stop")
	if s.err != nil {
		t.Fatalf("Stop: %v", s.err)
	}
	if d := s.at.Sub(begun); d < 200*time.Millisecond {
		t.Errorf("Stop returned after %v, before the drain timeout", d)
	}
	if r := recv(t, call, waitLong, "the call"); r.err == nil {
		t.Errorf("the call still running at the drain timeout succeeded: %v", r.v)
	}
}

// A drained server's client moves to another server of the mesh: its
// services are never withdrawn anywhere, every process can still call
// them, and it is linked to one server again, not two.
func TestDrainMovesClients(t *testing.T) {
	m := startMesh(t)
	x2, c2 := m.x[1], m.c[1]
	others := []*proc{m.x[0], m.x[2], m.c[0], m.c[2]}
	watches := map[*proc]*events{}
	for _, p := range others {
		watches[p] = watch(t, p, service.Name("c2"))
		watches[p].waitFor(t, service.Available, "c2")
	}
	x2pid := x2.pid()
	if s := recv(t, stopInBackground(x2), waitLong, "the drain"); s.err != nil {
		t.Fatalf("Stop: %v", s.err)
	}
	// The servers left see x2's links go before they are asked to route
	// around it: a request queued on such a link as it closed is lost
	// with it (it may have been written, so it is not sent again), and
	// one sent after goes the other way (rule 17). On a busy machine
	// x1 once still routed over x2 after x2's Stop returned.
	for _, p := range []*proc{m.x[0], m.x[2]} {
		nodetest.WaitFor(t, waitLong, func() error {
			if l := activeLinks(p, x2pid); len(l) != 0 {
				return fmt.Errorf("%s still has %d active links to x2", p.name, len(l))
			}
			return nil
		})
	}
	nodetest.WaitFor(t, waitLong, func() error {
		l := activeLinks(c2, 0)
		if len(l) != 1 || (l[0].RemoteProcess != m.x[0].pid() && l[0].RemoteProcess != m.x[2].pid()) {
			return fmt.Errorf("c2's links %+v; want one, to x1 or x3", l)
		}
		return nil
	})
	for _, p := range others {
		if watches[p].has(service.Withdrawn, "c2") {
			t.Errorf("%s saw c2 withdrawn while it moved: %v", p.name, watches[p].all())
		}
		mustMultiply(t, p, service.Name("c2"))
	}
	if !strings.Contains(c2.logs.String(), "server is draining; moving") {
		t.Errorf("c2 did not log its move:\n%s", c2.logs.String())
	}
}
