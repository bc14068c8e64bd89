package service_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// These tests stand in for the exchange (package actors) with a fake
// Link, to check the in-process side of remote bindings: name choice by
// hops (rule 13), failing requests when a link or binding goes (rules 9,
// 17), and answering requests that arrive over a link (rule 14).

type fakeLink struct {
	id   string
	peer service.ProcessID
	sent chan *registry.Envelope
	fail error // Send's error, when set before use
}

func newFakeLink(id string, peer service.ProcessID) *fakeLink {
	return &fakeLink{id: id, peer: peer, sent: make(chan *registry.Envelope, 100)}
}

func (l *fakeLink) Send(e *registry.Envelope) error {
	if l.fail != nil {
		return l.fail
	}
	c := *e // a link must not keep e (registry.Link)
	l.sent <- &c
	return nil
}

func (l *fakeLink) Info() registry.LinkInfo {
	return registry.LinkInfo{ID: l.id, ExchangeGroup: "eg", LocalRole: registry.RoleClient, PeerRole: registry.RoleServer,
		PeerProcess: l.peer, PeerNode: "peer-" + l.id, PeerAddress: "127.0.0.1:1"}
}

// importService tells the runtime that link announced a service.
func importService(rt *service.Runtime, l *fakeLink, name string, addr service.Address, hops int, groups ...string) {
	if groups == nil {
		groups = []string{}
	}
	rt.Kernel().Import(l, registry.Change{Kind: service.Available, Binding: service.Binding{
		Name: name, Address: addr, Audience: "*", Groups: groups, Node: "remote", Hops: hops}})
}

// respond answers a request envelope over the link it went out on.
func respond(t testing.TB, rt *service.Runtime, l *fakeLink, req *registry.Envelope, v any) {
	t.Helper()
	p, err := service.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	rt.Kernel().Deliver(&registry.Envelope{Kind: registry.KindResponse, To: req.From, From: req.To, Conv: req.Conv,
		ContentType: p.ContentType, Data: p.Data}, l)
}

// callAsync calls on a goroutine and returns the outcome's channel.
func callAsync(ctx context.Context, rt *service.Runtime, to service.Target, method string, args ...any) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := rt.Call(ctx, to, method, args...)
		ch <- err
	}()
	return ch
}

const (
	here  service.ProcessID = 0x100
	procA service.ProcessID = 0x200
	procB service.ProcessID = 0x300
	procC service.ProcessID = 0x400
)

// Rule 13: local first, then fewest hops, ties by the earliest seen.
func TestNameChoiceLocalThenHopsThenEarliest(t *testing.T) {
	rt := newRuntime(t, service.Config{ProcessID: here})
	ctx := testCtx(t)
	la, lb, lc := newFakeLink("A", procA), newFakeLink("B", procB), newFakeLink("C", procC)
	wa, wb, wc := service.Address{Process: procA, ID: 1}, service.Address{Process: procB, ID: 1}, service.Address{Process: procC, ID: 1}
	importService(rt, la, "w", wa, 2) // 3 hops away, seen first
	importService(rt, lb, "w", wb, 0) // 1 hop
	importService(rt, lc, "w", wc, 0) // 1 hop, seen last
	waitFor(t, waitTimeout, "three bindings", func() bool { return len(rt.Lookup("w")) == 3 })
	if got := addrs(rt.Lookup("w")); !slices.Equal(got, []service.Address{wb, wc, wa}) {
		t.Fatalf("Lookup(w) = %v, want [B C A]", got)
	}
	b, _ := rt.LookupAddress(wb)
	if b.Local || b.Hops != 1 || b.Link != "B" || b.ExchangeGroup != "eg" || b.Node != "remote" || b.Location() != "remote" || b.Process() != procB {
		t.Fatalf("remote binding = %+v", b)
	}

	local := start(t, rt, "w", func(a *service.Agent) error {
		a.Export("id", func() string { return "local" })
		return nil
	})
	if got := rt.Lookup("w")[0].Address; got != local {
		t.Fatalf("first binding %v, want the local one %v", got, local)
	}
	if s, err := service.CallFor[string](ctx, rt, service.Name("w"), "id"); err != nil || s != "local" {
		t.Fatalf("call by name: %q, %v", s, err)
	}
	stop(t, rt, local)

	// Now the call goes out over B (rule 14: method, arguments,
	// conversation id and the sender's address, to one address).
	res := make(chan string, 1)
	go func() {
		s, err := service.CallFor[string](ctx, rt, service.Name("w"), "id", 1, "two")
		if err != nil {
			s = err.Error()
		}
		res <- s
	}()
	req := recv(t, lb.sent, "request on link B")
	if req.Kind != registry.KindRequest || req.To != wb || req.From != (service.Address{Process: here}) || req.Subject != "id" || req.Conv == 0 {
		t.Fatalf("request envelope = %+v", req)
	}
	args := decode[[]any](t, service.Payload{ContentType: req.ContentType, Data: req.Data})
	if len(args) != 2 || args[0] != uint64(1) || args[1] != "two" {
		t.Fatalf("arguments = %#v", args)
	}
	respond(t, rt, lb, req, "remote B")
	if s := recv(t, res, "remote answer"); s != "remote B" {
		t.Fatalf("remote call = %q", s)
	}

	// C's binding also heard of through A: losing C keeps it, via A.
	importService(rt, la, "w", wc, 4)
	rt.Kernel().LinkDown(lc)
	b, ok := rt.LookupAddress(wc)
	if !ok || b.Link != "A" || b.Hops != 5 {
		t.Fatalf("after losing C: %+v, %v", b, ok)
	}
	if got := addrs(rt.Lookup("w")); !slices.Equal(got, []service.Address{wb, wa, wc}) {
		t.Fatalf("Lookup(w) after losing C = %v", got)
	}
}

// Rules 9 and 17: a lost link withdraws what came through it and fails
// the requests that went through it at once.
func TestLinkDownFailsRequestsAndWithdrawsBindings(t *testing.T) {
	rt := newRuntime(t, service.Config{ProcessID: here})
	ctx := testCtx(t)
	la := newFakeLink("A", procA)
	r := service.Address{Process: procA, ID: 7}
	events, sink := eventSink()
	stopWatch, err := rt.Watch(ctx, service.AllServices, sink)
	if err != nil {
		t.Fatal(err)
	}
	defer stopWatch.Cancel()
	importService(rt, la, "remote", r, 0, "g")
	wantEvents(t, events, avail("remote", r), joined("remote", r, "g"))
	rt.Kernel().Import(la, registry.Change{Kind: service.Joined, Binding: service.Binding{Address: r}, Group: "h"})
	wantEvents(t, events, joined("remote", r, "h"))
	if l := rt.LookupGroup("h"); len(l) != 1 || l[0].Address != r {
		t.Fatalf("LookupGroup(h) = %v", l)
	}

	done := callAsync(context.Background(), rt, service.Name("remote"), "m")
	recv(t, la.sent, "request on the link")
	rt.Kernel().LinkDown(la)
	f := wantFailure(t, recv(t, done, "failed call"), service.CodeLinkLost)
	if !strings.Contains(f.Details, "link A") || !errors.Is(f, service.ErrLinkLost) {
		t.Fatalf("link lost failure = %+v", f)
	}
	wantEvents(t, events, left("remote", r, "g"), left("remote", r, "h"), withdrawn("remote", r))
	if l := rt.Lookup("remote"); len(l) != 0 {
		t.Fatalf("Lookup after the link went down = %v", l)
	}
	_, err = rt.Call(ctx, service.Name("remote"), "m")
	wantFailure(t, err, service.CodeNoSuchService)
}

// Rule 17: a remote service withdrawn while a request waits fails it.
func TestRemoteWithdrawalFailsWaitingCall(t *testing.T) {
	rt := newRuntime(t, service.Config{ProcessID: here})
	la := newFakeLink("A", procA)
	r := service.Address{Process: procA, ID: 7}
	importService(rt, la, "remote", r, 0)
	waitFor(t, waitTimeout, "the import", func() bool { return len(rt.Lookup("remote")) == 1 })
	done := callAsync(context.Background(), rt, r, "m")
	req := recv(t, la.sent, "request")
	rt.Kernel().Import(la, registry.Change{Kind: service.Withdrawn, Binding: service.Binding{Address: r}})
	f := wantFailure(t, recv(t, done, "failed call"), service.CodeWithdrawn)
	if !strings.Contains(f.Details, "withdrawn before the response arrived") {
		t.Fatalf("details %q", f.Details)
	}
	// A late answer is dropped quietly.
	respond(t, rt, la, req, "late")
}

// A link that cannot take a request fails it with the link's reason.
func TestLinkSendFailureReachesCaller(t *testing.T) {
	rt := newRuntime(t, service.Config{ProcessID: here})
	ctx := testCtx(t)
	la := newFakeLink("A", procA)
	la.fail = &service.Failure{Code: service.CodeOverloaded, Description: "overloaded", Origin: service.OriginRuntime, Details: "queue full"}
	importService(rt, la, "busy", service.Address{Process: procA, ID: 1}, 0)
	waitFor(t, waitTimeout, "the import", func() bool { return len(rt.Lookup("busy")) == 1 })
	_, err := rt.Call(ctx, service.Name("busy"), "m")
	if f := wantFailure(t, err, service.CodeOverloaded); f.Details != "queue full" || !errors.Is(err, service.ErrOverloaded) {
		t.Fatalf("overload = %+v", f)
	}
}

// Rule 14 from the other side: a request arriving over a link is served
// and answered over it with the same conversation id; failures too.
func TestRequestFromLinkAnsweredOverLink(t *testing.T) {
	rt := newRuntime(t, service.Config{ProcessID: here})
	la := newFakeLink("A", procA)
	math := startMath(t, rt)
	rt.Kernel().LearnRoute(procA, la)
	if rt.Kernel().RouteTo(procA) != la {
		t.Fatal("RouteTo after LearnRoute")
	}
	caller := service.Address{Process: procA, ID: 5}
	args, _ := registry.EncodeArgs(6, 7)
	rt.Kernel().Deliver(&registry.Envelope{Kind: registry.KindRequest, To: math, From: caller, Conv: 77, Subject: "multiply",
		ContentType: args.ContentType, Data: args.Data}, la)
	res := recv(t, la.sent, "response")
	if res.Kind != registry.KindResponse || res.Conv != 77 || res.To != caller || res.From != math {
		t.Fatalf("response envelope = %+v", res)
	}
	if v := decode[int](t, service.Payload{ContentType: res.ContentType, Data: res.Data}); v != 42 {
		t.Fatalf("response = %d", v)
	}

	rt.Kernel().Deliver(&registry.Envelope{Kind: registry.KindRequest, To: math, From: caller, Conv: 78, Subject: "nope",
		ContentType: args.ContentType, Data: args.Data}, la)
	fe := recv(t, la.sent, "failure")
	f := decode[service.Failure](t, service.Payload{ContentType: fe.ContentType, Data: fe.Data})
	if fe.Kind != registry.KindFailure || fe.Conv != 78 || f.Code != service.CodeNoSuchMethod {
		t.Fatalf("failure envelope %+v: %+v", fe, f)
	}

	// A request for a service that is not here is answered with a failure.
	rt.Kernel().Deliver(&registry.Envelope{Kind: registry.KindRequest, To: service.Address{Process: here, ID: 999}, From: caller, Conv: 79,
		Subject: "x", ContentType: args.ContentType, Data: args.Data}, la)
	fe = recv(t, la.sent, "failure")
	if f := decode[service.Failure](t, service.Payload{ContentType: fe.ContentType, Data: fe.Data}); fe.Conv != 79 || f.Code != service.CodeNoSuchService {
		t.Fatalf("failure for a missing service %+v: %+v", fe, f)
	}
}

// Close fails requests waiting on remote services with CodeShutdown.
func TestCloseFailsRemoteCalls(t *testing.T) {
	rt := newRuntime(t, service.Config{ProcessID: here})
	la := newFakeLink("A", procA)
	importService(rt, la, "remote", service.Address{Process: procA, ID: 1}, 0)
	waitFor(t, waitTimeout, "the import", func() bool { return len(rt.Lookup("remote")) == 1 })
	done := callAsync(context.Background(), rt, service.Name("remote"), "m")
	recv(t, la.sent, "request")
	if err := rt.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	wantFailure(t, recv(t, done, "failed call"), service.CodeShutdown)
}

// The registry feeds an attached exchange every change, in order, and
// dumps what it knows on request.
func TestExchangeFeedAndDump(t *testing.T) {
	rt := newRuntime(t, service.Config{ProcessID: here})
	changes := make(chan registry.Change, 100)
	dumps := make(chan *registry.Dump, 1)
	pid := rt.Kernel().ActorSystem().Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *registry.Change:
			changes <- *m
		case *registry.Dump:
			dumps <- m
		}
	}))
	rt.Kernel().AttachExchange(pid)
	defer rt.Kernel().DetachExchange(pid)

	m := startProbe(t, rt, "m", nil, service.Audience(""), service.Groups("g"))
	m.Do(func(a *service.Agent) { a.JoinGroup("h") })
	stop(t, rt, m.Addr)
	type ch struct {
		kind     service.EventKind
		addr     service.Address
		group    string
		audience string
	}
	var got []ch
	for _, c := range recvN(t, changes, 3, "change") {
		if c.Origin != nil || c.Process {
			t.Fatalf("local change with origin or process flag: %+v", c)
		}
		got = append(got, ch{c.Kind, c.Binding.Address, c.Group, c.Binding.Audience})
	}
	want := []ch{{service.Available, m.Addr, "", ""}, {service.Joined, m.Addr, "h", ""}, {service.Withdrawn, m.Addr, "", ""}}
	if !slices.Equal(got, want) {
		t.Fatalf("changes = %+v, want %+v", got, want)
	}

	kept := start(t, rt, "kept", func(a *service.Agent) error { return nil })
	recv(t, changes, "change")
	la := newFakeLink("A", procA)
	rt.Kernel().RequestDump(pid, la)
	d := recv(t, dumps, "dump")
	if d.Link != la || len(d.Changes) != 2 {
		t.Fatalf("dump = %+v", d)
	}
	if p := d.Changes[0]; !p.Process || p.Binding.Address != (service.Address{Process: here}) || p.Binding.Node != "test" {
		t.Fatalf("dump starts with %+v, want this process", p)
	}
	if b := d.Changes[1]; b.Kind != service.Available || b.Binding.Address != kept || b.Binding.Name != "kept" {
		t.Fatalf("dump binding = %+v", b)
	}
}

// Close does not wait for a service blocked in a call that only Close
// can end: the call fails with CodeShutdown and Close returns promptly.
func TestCloseEndsServiceBlockedInRemoteCall(t *testing.T) {
	rt := newRuntime(t, service.Config{ProcessID: here, CallTimeout: 20 * time.Second, StopTimeout: 10 * time.Second})
	la := newFakeLink("A", procA)
	importService(rt, la, "remote", service.Address{Process: procA, ID: 1}, 0)
	waitFor(t, waitTimeout, "the import", func() bool { return len(rt.Lookup("remote")) == 1 })
	errs := make(chan error, 1)
	start(t, rt, "front", func(a *service.Agent) error {
		a.Export("relay", func(ctx context.Context) error {
			_, err := a.Call(ctx, service.Name("remote"), "m")
			errs <- err
			return err
		})
		return nil
	})
	done := callAsync(context.Background(), rt, service.Name("front"), "relay")
	recv(t, la.sent, "request on the link")
	t0 := time.Now()
	if err := rt.Close(testCtx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	wantFailure(t, recv(t, errs, "the service's call"), service.CodeShutdown)
	wantFailure(t, recv(t, done, "the outer call"), service.CodeShutdown)
}
