package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/service"
)

// mesh is three servers linked in a ring of static connects (x1 → x2 →
// x3 → x1), which makes a full mesh, with a client process on each.
// Each client hosts a "worker" and a service named after itself.
type mesh struct {
	x, c [3]*proc
	kit  [3]*crashKit // x[i]'s links, to cut them as a crash would
}

func startMesh(t *testing.T) *mesh {
	t.Helper()
	m := &mesh{}
	lns := make([]string, 3)
	for i := range m.kit {
		m.kit[i] = &crashKit{}
		lns[i] = m.kit[i].listener(t).Addr().String()
	}
	for i := range m.x {
		next := lns[(i+1)%3]
		m.x[i] = startNode(t, fmt.Sprintf("x%d", i+1),
			serverX("", m.kit[i].ln, m.kit[i].via(t, next)))
	}
	for i := range m.c {
		m.c[i] = startNode(t, fmt.Sprintf("c%d", i+1), clientX("", lns[i]))
		startMath(t, m.c[i], "worker")
		startMath(t, m.c[i], m.c[i].name)
	}
	for i := range m.x {
		linkedTo(t, m.x[i], m.x[(i+1)%3], m.x[(i+2)%3], m.c[i])
	}
	for _, p := range m.all() {
		visible(t, p, "worker", 3)
		for _, c := range m.c {
			visible(t, p, c.name, 1)
		}
	}
	return m
}

func (m *mesh) all() []*proc { return append(m.x[:], m.c[:]...) }

// TestMeshPropagation checks rules 6–8 on three fully meshed
// servers with a client each: every process sees every client's
// services exactly once, with the hop counts of the shortest path, can
// call them, and a late joiner gets the whole picture at link-up.
func TestMeshPropagation(t *testing.T) {
	m := startMesh(t)
	for _, p := range m.all() {
		workers := p.rt().Lookup("worker")
		seen := map[service.ProcessID]bool{}
		for _, b := range workers {
			seen[b.Address.Process] = true
		}
		if len(seen) != 3 {
			t.Errorf("%s sees workers of %d processes: %+v", p.name, len(seen), workers)
		}
		// One link per pair: a server's links go to the two other servers
		// and its own client.
		for _, l := range p.Links() {
			if l.State != "active" {
				t.Errorf("%s has a link in state %s: %+v", p.name, l.State, l)
			}
		}
	}
	for i, x := range m.x {
		if n := len(x.Links()); n != 3 {
			t.Errorf("%s has %d links, want 3: %+v", x.name, n, x.Links())
		}
		// Split horizon keeps each binding to one entry and the hops to
		// the shortest path: client → its server → another server → its client.
		for j, c := range m.c {
			b := visible(t, x, c.name, 1)[0]
			want := 1
			if i != j {
				want = 2
			}
			if b.Hops != want {
				t.Errorf("%s sees %s at %d hops, want %d", x.name, c.name, b.Hops, want)
			}
		}
	}
	for i, c := range m.c {
		for j, other := range m.c {
			if i == j {
				continue
			}
			if b := visible(t, c, other.name, 1)[0]; b.Hops != 3 {
				t.Errorf("%s sees %s at %d hops, want 3", c.name, other.name, b.Hops)
			}
			mustMultiply(t, c, service.Name(other.name))
		}
	}

	// Rule 7 (our rule): a server's own service created after the mesh
	// is up reaches every client at once, not only its own.
	startMath(t, m.x[0], "x1-late")
	for _, p := range m.all() {
		visible(t, p, "x1-late", 1)
	}
	mustMultiply(t, m.c[2], service.Name("x1-late"))

	// Rule 8: a late joiner gets everything at link-up, and everyone
	// gets its services.
	late := startNode(t, "late", clientX("", m.x[2].Addr()))
	if err := late.WaitSynced(ctxFor(t, waitLong)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"c1", "c2", "c3", "x1-late"} {
		if l := late.rt().Lookup(name); len(l) != 1 {
			t.Errorf("right after link-up the late joiner sees %d bindings of %s", len(l), name)
		}
	}
	if l := late.rt().Lookup("worker"); len(l) != 3 {
		t.Errorf("right after link-up the late joiner sees %d workers, want 3", len(l))
	}
	startMath(t, late, "late-svc")
	for _, p := range m.all() {
		visible(t, p, "late-svc", 1)
	}
	mustMultiply(t, m.c[0], service.Name("late-svc"))
}

// TestMeshServerGoes checks rules 9 and 11: when one of three
// meshed servers goes, by a crash (connections reset, no bye) or a
// close without a drain (a bye), its client's services are withdrawn in every other
// process, registry watchers see Withdrawn, the links to it are reported
// down, and the rest of the mesh goes on. (A drained server moves its
// clients instead: see drain_test.go.)
func TestMeshServerGoes(t *testing.T) {
	for _, how := range []string{"crash", "close"} {
		t.Run(how, func(t *testing.T) {
			m := startMesh(t)
			x1, x2, x3 := m.x[0], m.x[1], m.x[2]
			others := []*proc{x1, x3, m.c[0], m.c[2]}
			watches := map[*proc]*events{}
			for _, p := range others {
				watches[p] = watch(t, p, service.Name("c2"))
				watches[p].waitFor(t, service.Available, "c2")
			}
			links1, links3 := watchLinks(x1.x("")), watchLinks(x3.x(""))

			start := time.Now()
			if how == "crash" {
				m.kit[1].crash()
			} else {
				x2.close(t)
			}
			for _, p := range others {
				watches[p].waitFor(t, service.Withdrawn, "c2")
				visible(t, p, "c2", 0)
				visible(t, p, "worker", 2)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("withdrawals took %v; the sockets closed at once", d)
			}
			for _, le := range []*linkEvents{links1, links3} {
				nodetest.WaitFor(t, waitLong, func() error {
					// A new watcher is first told of the links already up.
					if got := le.upDown(x2.pid()); got != "up down" {
						return fmt.Errorf("link events for x2: %q, want \"up down\"", got)
					}
					return nil
				})
				// A crash gives the peers no bye (see TestStopSaysBye for a stop).
				for _, r := range le.downReasons(x2.pid()) {
					if how == "crash" && strings.Contains(r, "stopping") {
						t.Errorf("link to x2 went down with reason %q after a crash: the crash was not abrupt", r)
					}
				}
			}
			// The rest of the mesh is untouched.
			for _, p := range []*proc{x1, x3} {
				if got := len(activeLinks(p, 0)); got != 2 {
					t.Errorf("%s has %d active links, want 2: %+v", p.name, got, p.Links())
				}
			}
			mustMultiply(t, m.c[0], service.Name("c3"))
			mustMultiply(t, m.c[2], service.Name("c1"))
			if _, err := multiply(m.c[0], service.Name("c2"), 1, 2); failureCode(err) != service.CodeNoSuchService {
				t.Errorf("calling c2 after its server went: %v, want no such service", err)
			}
		})
	}
}

// TestStopSaysBye checks that a node stopping gracefully says bye on its
// links, so its peers log why it went (DESIGN, "The wire"; Node.Stop).
func TestStopSaysBye(t *testing.T) {
	x := startNode(t, "x", serverX("", listen(t)))
	c := startNode(t, "c", clientX("", x.Addr()))
	linkedTo(t, c, x)
	le := watchLinks(c.x(""))
	x.stop(t)
	nodetest.WaitFor(t, waitLong, func() error {
		rs := le.downReasons(x.pid())
		if len(rs) != 1 || !strings.Contains(rs[0], "closed the link: ") || !strings.Contains(rs[0], "stopping") {
			return fmt.Errorf("down reasons %q; want the bye's reason, that x is stopping", rs)
		}
		return nil
	})
}

// parkService starts a service whose method never answers; got gets a
// value as each request arrives.
func parkService(t testing.TB, p *proc, name string, got chan<- struct{}) {
	startService(t, p, name, func(a *service.Agent) error {
		a.Export("park", func(ctx context.Context) {
			service.RequestOf(ctx).Delay()
			got <- struct{}{}
		})
		return nil
	})
}

// TestRequestFailsWhenPathGoes checks rule 17 across two hops of
// servers (client → server → server → client): a request waiting on a
// service fails at once, not at its deadline, when the serving process
// or its server closes (without a drain) or crashes. (A drain lets it
// finish: see drain_test.go.)
func TestRequestFailsWhenPathGoes(t *testing.T) {
	cases := []struct {
		name string
		kill func(t *testing.T, server, servingClient *proc, serverKit, clientKit *crashKit)
	}{
		{"serving client closes", func(t *testing.T, _, c *proc, _, _ *crashKit) { c.close(t) }},
		{"serving client crashes", func(_ *testing.T, _, _ *proc, _, k *crashKit) { k.crash() }},
		{"its server closes", func(t *testing.T, x, _ *proc, _, _ *crashKit) { x.close(t) }},
		{"its server crashes", func(_ *testing.T, _, _ *proc, k, _ *crashKit) { k.crash() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x1 := startNode(t, "x1", serverX("", listen(t)))
			xkit, ckit := &crashKit{}, &crashKit{}
			x2 := startNode(t, "x2", serverX("", xkit.listener(t), xkit.via(t, x1.Addr())))
			caller := startNode(t, "caller", clientX("", x1.Addr()))
			serving := startNode(t, "serving", clientX("", ckit.via(t, x2.Addr())))
			got := make(chan struct{}, 1)
			parkService(t, serving, "parked", got)
			b := visible(t, caller, "parked", 1)[0]
			if b.Hops != 3 {
				t.Fatalf("caller sees parked at %d hops, want 3", b.Hops)
			}

			type result struct {
				err error
				at  time.Time
			}
			done := make(chan result, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, err := caller.rt().Call(ctx, service.Name("parked"), "park")
				done <- result{err, time.Now()}
			}()
			recv(t, got, waitLong, "the request to reach the parked service")
			start := time.Now()
			go tc.kill(t, x2, serving, xkit, ckit)
			r := recv(t, done, waitLong, "the parked call to fail")
			if code := failureCode(r.err); code != service.CodeWithdrawn && code != service.CodeLinkLost {
				t.Fatalf("parked call ended with %v, want withdrawn or link lost", r.err)
			}
			if d := r.at.Sub(start); d > time.Second {
				t.Fatalf("the parked call failed %v after the path went, want at once", d)
			}
		})
	}
}

// TestInOrderAcrossMesh checks rules 22 and 23: 10 000 requests and
// 10 000 reports sent back to back across client → server → server →
// client all arrive, in the order sent, and nothing is dropped.
func TestInOrderAcrossMesh(t *testing.T) {
	const n = 10000
	x1 := startNode(t, "x1", serverX("", listen(t)))
	x2 := startNode(t, "x2", serverX("", listen(t), x1.Addr()))
	near := startNode(t, "near", clientX("", x1.Addr()))
	far := startNode(t, "far", clientX("", x2.Addr()))

	// far serves "seq", which records the order requests arrive in, and
	// publishes "ticker".
	type served struct {
		count, outOfOrder int
		first             string
	}
	servedCh := make(chan served, 1)
	startService(t, far, "seq", func(a *service.Agent) error {
		var s served
		a.Export("next", func(i int) int {
			if i != s.count && s.outOfOrder == 0 {
				s.first = fmt.Sprintf("request %d arrived as number %d", i, s.count)
			}
			if i != s.count {
				s.outOfOrder++
			}
			s.count++
			if s.count == n {
				servedCh <- s
			}
			return i
		})
		return nil
	})
	subscribed := make(chan struct{}, 1)
	startService(t, far, "ticker", func(a *service.Agent) error {
		a.OnSubscription(func(ev service.SubscriptionEvent) {
			if ev.Subscribed {
				subscribed <- struct{}{}
			}
		})
		a.Export("burst", func(count int) (int, error) {
			congested := 0
			for i := 0; i < count; i++ {
				if err := a.Publish("tick", i); err != nil {
					congested++
				}
			}
			return congested, nil
		})
		return nil
	})

	// near sends the requests from one service, without waiting between
	// them, and subscribes to the ticks.
	type outcome struct {
		replies, failures, outOfOrder int
		firstErr                      error
	}
	repliesCh := make(chan outcome, 1)
	startService(t, near, "sender", func(a *service.Agent) error {
		a.Export("send", func() {
			var o outcome
			for i := 0; i < n; i++ {
				a.Request(service.Name("seq"), "next", i).Then(func(p service.Payload, err error) {
					var v int
					if err == nil {
						err = p.Decode(&v)
					}
					switch {
					case err != nil:
						o.failures++
						if o.firstErr == nil {
							o.firstErr = err
						}
					case v != o.replies:
						o.outOfOrder++
					}
					o.replies++
					if o.replies == n {
						repliesCh <- o
					}
				})
			}
		})
		return nil
	})
	type reports struct {
		count, outOfOrder int
		first             string
	}
	reportsCh := make(chan reports, 1)
	visible(t, near, "ticker", 1)
	startService(t, near, "listener", func(a *service.Agent) error {
		var r reports
		_, err := a.Subscribe(service.Name("ticker"), "tick", func(rep service.Report) {
			var v int
			if err := rep.Decode(&v); err != nil || v != r.count {
				if r.outOfOrder == 0 {
					r.first = fmt.Sprintf("report %d (%v) arrived as number %d", v, err, r.count)
				}
				r.outOfOrder++
			}
			r.count++
			if r.count == n {
				reportsCh <- r
			}
		})
		return err
	})
	recv(t, subscribed, waitLong, "the subscription to reach the ticker")
	visible(t, near, "seq", 1)

	ctx := ctxFor(t, 60*time.Second)
	if _, err := near.rt().Call(ctx, service.Name("sender"), "send"); err != nil {
		t.Fatalf("send: %v", err)
	}
	congested, err := service.CallFor[int](ctx, far.rt(), service.Name("ticker"), "burst", n)
	if err != nil || congested != 0 {
		t.Fatalf("burst: %d publishes reported congestion, %v", congested, err)
	}

	o := recv(t, repliesCh, 60*time.Second, "all replies")
	if o.failures != 0 || o.outOfOrder != 0 {
		t.Errorf("replies: %d failed (first: %v), %d out of order", o.failures, o.firstErr, o.outOfOrder)
	}
	s := recv(t, servedCh, waitLong, "all requests served")
	if s.outOfOrder != 0 {
		t.Errorf("requests: %d arrived out of order; first: %s", s.outOfOrder, s.first)
	}
	r := recv(t, reportsCh, 60*time.Second, "all reports")
	if r.outOfOrder != 0 {
		t.Errorf("reports: %d out of order; first: %s", r.outOfOrder, r.first)
	}
	for _, p := range []*proc{x1, x2, near, far} {
		for _, l := range p.Links() {
			if l.Dropped != 0 || l.Refused != 0 {
				t.Errorf("%s link %s dropped %d reports and refused %d requests", p.name, l.ID, l.Dropped, l.Refused)
			}
		}
	}
}
