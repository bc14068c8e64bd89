package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/service"
)

// TestHubRequestReply is OSE scenario 1: a server, a client process
// hosting SERVICE, and an anonymous client that waits for SERVICE by name
// and calls it; the reply carries the conversation id the call returned.
func TestHubRequestReply(t *testing.T) {
	x := startNode(t, "x", serverX("", listen(t)))
	c1 := startNode(t, "c1", clientX("", x.Addr()))
	c2 := startNode(t, "c2", clientX("", x.Addr()))

	served := make(chan uint64, 1) // the conversation id the service saw
	startService(t, c1, "SERVICE", func(a *service.Agent) error {
		a.Export("multiply", func(ctx context.Context, x, y int) int {
			served <- service.RequestOf(ctx).Conversation()
			return x * y
		})
		return nil
	})

	type answer struct {
		conv    uint64
		value   int
		err     error
		binding service.Binding
	}
	answers := make(chan answer, 1)
	startService(t, c2, "", func(a *service.Agent) error {
		called := false
		a.Watch(service.Name("SERVICE"), func(ev service.RegistryEvent) {
			if ev.Kind != service.Available || called {
				return
			}
			called = true
			var p *service.Pending
			p = a.Request(ev.Binding.Address, "multiply", 6, 7).Then(func(res service.Payload, err error) {
				var v int
				if err == nil {
					err = res.Decode(&v)
				}
				answers <- answer{conv: p.Conversation(), value: v, err: err, binding: ev.Binding}
			})
		})
		return nil
	})

	got := recv(t, answers, waitLong, "the reply to multiply(6, 7)")
	if got.err != nil || got.value != 42 {
		t.Fatalf("multiply(6, 7) = %d, %v; want 42", got.value, got.err)
	}
	if conv := recv(t, served, waitLong, "the served conversation"); conv != got.conv {
		t.Fatalf("the service saw conversation %d, the call returned %d", conv, got.conv)
	}
	b := got.binding
	if b.Local || b.Node != "c1" || b.Hops != 2 || b.Address.Process != c1.pid() || b.Audience != "*" {
		t.Fatalf("c2's binding of SERVICE = %+v; want remote, node c1, 2 hops (c1 → x → c2), audience *", b)
	}
	// The server in the middle sees it one hop away.
	if b := visible(t, x, "SERVICE", 1)[0]; b.Hops != 1 || b.Local {
		t.Fatalf("x's binding of SERVICE = %+v; want remote, 1 hop", b)
	}
}

// TestAudienceEmpty checks rule 2: a service with audience "" is
// visible and callable in its own process only.
func TestAudienceEmpty(t *testing.T) {
	x := startNode(t, "x", serverX("", listen(t)))
	c1 := startNode(t, "c1", clientX("", x.Addr()))
	c2 := startNode(t, "c2", clientX("", x.Addr()))
	watchC2 := watch(t, c2, service.AllServices)
	watchX := watch(t, x, service.AllServices)

	// hidden first: were it exported, it would reach every process
	// before public, which goes the same way after it.
	startMath(t, c1, "hidden", service.Audience(""))
	startMath(t, c1, "public")
	visible(t, c2, "public", 1)
	visible(t, x, "public", 1)
	watchC2.waitFor(t, service.Available, "public")
	watchX.waitFor(t, service.Available, "public")

	for _, p := range []*proc{x, c2} {
		if l := p.rt().Lookup("hidden"); len(l) != 0 {
			t.Errorf("%s sees hidden: %+v", p.name, l)
		}
		if _, err := multiply(p, service.Name("hidden"), 6, 7); failureCode(err) != service.CodeNoSuchService {
			t.Errorf("%s calling hidden by name: %v, want no such service", p.name, err)
		}
	}
	if watchC2.has(service.Available, "hidden") || watchX.has(service.Available, "hidden") {
		t.Errorf("a registry watch in another process saw hidden: c2 %v, x %v", watchC2.all(), watchX.all())
	}
	// Its own process sees it and calls it, from outside and from a service.
	if b := visible(t, c1, "hidden", 1)[0]; !b.Local || b.Audience != "" {
		t.Fatalf("c1's binding of hidden = %+v", b)
	}
	mustMultiply(t, c1, service.Name("hidden"))
	res := make(chan error, 1)
	startService(t, c1, "caller", func(a *service.Agent) error {
		a.Request(service.Name("hidden"), "multiply", 2, 3).Then(func(p service.Payload, err error) {
			var v int
			if err == nil {
				err = p.Decode(&v)
			}
			if err == nil && v != 6 {
				err = fmt.Errorf("multiply(2, 3) = %d", v)
			}
			res <- err
		})
		return nil
	})
	if err := recv(t, res, waitLong, "a local service's call to hidden"); err != nil {
		t.Fatalf("a service in c1 calling hidden: %v", err)
	}
	// The other process can call the public one.
	mustMultiply(t, c2, service.Name("public"))
}

// TestAudienceGroup checks rule 3: a service whose audience names
// exchange group G is exported through the process's endpoint of group
// G only.
func TestAudienceGroup(t *testing.T) {
	xd := startNode(t, "x-default", serverX("", listen(t)))
	xg := startNode(t, "x-g", serverX("G", listen(t)))
	p := startNode(t, "p", clientX("", xd.Addr()), clientX("G", xg.Addr()))
	cd := startNode(t, "c-default", clientX("", xd.Addr()))
	cg := startNode(t, "c-g", clientX("G", xg.Addr()))
	watchCD := watch(t, cd, service.AllServices)

	startMath(t, p, "only-g", service.Audience("G"))
	startMath(t, p, "for-all")

	for _, q := range []*proc{xg, cg} {
		visible(t, q, "only-g", 1)
		visible(t, q, "for-all", 1)
	}
	mustMultiply(t, cg, service.Name("only-g"))
	for _, q := range []*proc{xd, cd} {
		visible(t, q, "for-all", 1)
	}
	watchCD.waitFor(t, service.Available, "for-all")
	for _, q := range []*proc{xd, cd} {
		if l := q.rt().Lookup("only-g"); len(l) != 0 {
			t.Errorf("%s (group \"\") sees only-g: %+v", q.name, l)
		}
	}
	if watchCD.has(service.Available, "only-g") {
		t.Errorf("a watch in group \"\" saw only-g: %v", watchCD.all())
	}
	mustMultiply(t, cd, service.Name("for-all"))
	if b := visible(t, cg, "only-g", 1)[0]; b.ExchangeGroup != "G" || b.Audience != "G" {
		t.Fatalf("cg's binding of only-g = %+v; want exchange group G, audience G", b)
	}
}

// TestBridge checks rule 5: a process with client endpoints in
// groups "" and "backend" re-exports "*" services between them as if
// they were its own, but not a service whose audience is "backend" into
// group "".
func TestBridge(t *testing.T) {
	x0 := startNode(t, "x0", serverX("", listen(t)))
	xb := startNode(t, "xb", serverX("backend", listen(t)))
	bridge := startNode(t, "bridge", clientX("", x0.Addr()), clientX("backend", xb.Addr()))
	c0 := startNode(t, "c0", clientX("", x0.Addr()))
	cb := startNode(t, "cb", clientX("backend", xb.Addr()))
	watchC0 := watch(t, c0, service.AllServices)

	startMath(t, cb, "b-back", service.Audience("backend"))
	startMath(t, cb, "b-star")
	startMath(t, c0, "f-star")

	// Both ways through the bridge: c0 → x0 → bridge → xb → cb.
	for _, q := range []*proc{x0, c0} {
		b := visible(t, q, "b-star", 1)[0]
		if b.ExchangeGroup != "" || b.Address.Process != cb.pid() {
			t.Fatalf("%s's binding of b-star = %+v", q.name, b)
		}
	}
	mustMultiply(t, c0, service.Name("b-star"))
	visible(t, cb, "f-star", 1)
	visible(t, xb, "f-star", 1)
	mustMultiply(t, cb, service.Name("f-star"))

	// The bridge itself sees both backend services, and can call them.
	visible(t, bridge, "b-back", 1)
	visible(t, bridge, "b-star", 1)
	mustMultiply(t, bridge, service.Name("b-back"))

	// b-back was announced before b-star on the same path, so it would be
	// here by now had the bridge exported it.
	watchC0.waitFor(t, service.Available, "b-star")
	for _, q := range []*proc{x0, c0} {
		if l := q.rt().Lookup("b-back"); len(l) != 0 {
			t.Errorf("%s (group \"\") sees b-back, whose audience is backend: %+v", q.name, l)
		}
	}
	if watchC0.has(service.Available, "b-back") {
		t.Errorf("c0's watch saw b-back: %v", watchC0.all())
	}
	// No loop: the bridge does not send group "" its own services back,
	// and each binding is there once.
	for _, q := range []*proc{x0, c0, xb, cb, bridge} {
		for _, name := range []string{"b-star", "f-star"} {
			if l := q.rt().Lookup(name); len(l) != 1 {
				t.Errorf("%s sees %d bindings of %s: %+v", q.name, len(l), name, l)
			}
		}
	}
}

// TestExchangeGroupMismatch is OSE scenario 9 and rule 4: a client
// of group "other" dialling a server of group "" is refused with the
// reason on both sides, no bindings cross, and the server keeps serving
// its other clients.
func TestExchangeGroupMismatch(t *testing.T) {
	x := startNode(t, "x", serverX("", listen(t)))
	startMath(t, x, "math")
	good := startNode(t, "good", clientX("", x.Addr()))
	visible(t, good, "math", 1)

	other := startNode(t, "other", clientX("other", x.Addr()))
	startMath(t, other, "other-svc")

	// The server says why, and forms no link.
	nodetest.WaitFor(t, waitLong, func() error {
		if l := x.logs.lines("exchange group mismatch"); len(l) == 0 {
			return fmt.Errorf("x logged no group mismatch")
		}
		return nil
	})
	// The client sees the reason, and gives up at once: retrying cannot
	// help (DESIGN, "The wire").
	nodetest.WaitFor(t, waitLong, func() error {
		ts := other.x("other").Targets()
		if len(ts) != 1 || ts[0].State != "rejected" || !strings.Contains(ts[0].LastErr, "exchange group mismatch") {
			return fmt.Errorf("client targets %+v; want state rejected with the group mismatch as reason", ts)
		}
		if ts[0].Attempts != 1 {
			return fmt.Errorf("rejected after %d attempts, want 1: a mismatch is not worth retrying", ts[0].Attempts)
		}
		return nil
	})
	for _, l := range x.Links() {
		if l.RemoteProcess == other.pid() {
			t.Errorf("x shows a link to the refused client: %+v", l)
		}
	}
	if l := activeLinks(other, 0); len(l) != 0 {
		t.Errorf("the refused client has active links: %+v", l)
	}
	if l := x.logs.lines("link up", "peer=other"); len(l) != 0 {
		t.Errorf("x brought a link to the refused client up: %v", l)
	}
	if l := other.logs.lines("link up"); len(l) != 0 {
		t.Errorf("the refused client brought a link up: %v", l)
	}
	// No bindings either way.
	if l := x.rt().Lookup("other-svc"); len(l) != 0 {
		t.Errorf("x sees the refused client's service: %+v", l)
	}
	if l := other.rt().Lookup("math"); len(l) != 0 {
		t.Errorf("the refused client sees x's service: %+v", l)
	}
	if ps := other.rt().Kernel().Processes(); len(ps) != 0 {
		t.Errorf("the refused client knows processes %+v", ps)
	}
	mustMultiply(t, good, service.Name("math"))
}
