package service_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// Rule 32: one-way messages, handled per sender (address, name or any)
// and message id; the first matching handler wins.
func TestOneWayMessages(t *testing.T) {
	rt := newRuntime(t)
	type got struct {
		handler string
		m       service.Message
	}
	msgs := make(chan got, 20)
	inbox := startProbe(t, rt, "inbox", nil)
	alice := startProbe(t, rt, "alice", nil)
	bob := startProbe(t, rt, "bob", nil)
	anon := startProbe(t, rt, "", nil)
	var second *service.Handler
	inbox.Do(func(a *service.Agent) {
		a.HandleMessages(alice.Addr, "ping", func(m service.Message) { msgs <- got{"alice-ping", m} })
		a.HandleMessages(service.Name("bob"), "", func(m service.Message) { msgs <- got{"bob-any", m} })
		a.HandleMessages(service.AllServices, "x", func(m service.Message) { msgs <- got{"all-x", m} })
		second = a.HandleMessages(service.AllServices, "x", func(m service.Message) { msgs <- got{"all-x again", m} })
	})

	alice.Do(func(a *service.Agent) {
		if err := a.SendMessage(service.Name("inbox"), "ping", "a ping", map[string]int{"n": 1}, 7); err != nil {
			t.Error(err)
		}
	})
	g := recv(t, msgs, "message")
	if g.handler != "alice-ping" || g.m.From != alice.Addr || g.m.ID != "ping" || g.m.Description != "a ping" || g.m.Sequence != 7 {
		t.Fatalf("message = %s %+v", g.handler, g.m)
	}
	if v := decode[map[string]int](t, g.m.Payload); v["n"] != 1 || len(v) != 1 {
		t.Fatalf("content = %v", v)
	}

	// Every matching handler runs, in the order they were registered.
	alice.Do(func(a *service.Agent) { _ = a.SendMessage(inbox.Addr, "x", "", "from alice", 8) })
	for _, want := range []string{"all-x", "all-x again"} {
		if g := recv(t, msgs, "message"); g.handler != want || g.m.From != alice.Addr || g.m.Sequence != 8 {
			t.Fatalf("alice's x went to %s: %+v; want %s", g.handler, g.m, want)
		}
	}
	inbox.Do(func(*service.Agent) { second.Cancel() })

	bob.Do(func(a *service.Agent) {
		_ = a.SendMessage(inbox.Addr, "whatever", "d", service.Raw{ContentType: "text/plain", Data: []byte("plain")}, 1)
	})
	g = recv(t, msgs, "message")
	if g.handler != "bob-any" || g.m.ID != "whatever" || g.m.ContentType != "text/plain" || string(g.m.Data) != "plain" {
		t.Fatalf("bob's message = %s %+v", g.handler, g.m)
	}

	// From one sender, messages arrive in order: the unhandled "y" was
	// dropped before "x" arrived.
	anon.Do(func(a *service.Agent) {
		_ = a.SendMessage(inbox.Addr, "y", "", "dropped", 1)
		_ = a.SendMessage(inbox.Addr, "x", "", "anon", 2)
	})
	if g := recv(t, msgs, "message"); g.handler != "all-x" || g.m.From != anon.Addr || g.m.Sequence != 2 {
		t.Fatalf("anonymous x = %s %+v", g.handler, g.m)
	}
	inbox.Do(func(*service.Agent) {})
	empty(t, msgs, "message")

	anon.Do(func(a *service.Agent) {
		err := a.SendMessage(service.Name("nobody"), "x", "", 1, 1)
		if !errors.Is(err, service.ErrNoSuchService) {
			t.Errorf("message to nobody: %v", err)
		}
		if err := a.SendMessage(inbox.Addr, "x", "", make(chan int), 1); err == nil {
			t.Error("unencodable message content accepted")
		}
	})
}

// Timers run inside the service: After once, Every until stopped, and a
// stopped timer never fires.
func TestTimers(t *testing.T) {
	rt := newRuntime(t)
	fired := make(chan string, 100)
	p := startProbe(t, rt, "timers", nil)
	p.Do(func(a *service.Agent) {
		a.After(5*time.Millisecond, func() { fired <- "after" })
		cancelled := a.After(10*time.Millisecond, func() { fired <- "cancelled" })
		if !cancelled.Stop() {
			t.Error("Stop of a pending timer returned false")
		}
		if cancelled.Stop() {
			t.Error("second Stop returned true")
		}
		var nilTimer *service.Timer
		if nilTimer.Stop() {
			t.Error("Stop of a nil timer returned true")
		}
		n := 0
		var every *service.Timer
		every = a.Every(2*time.Millisecond, func() {
			n++
			fired <- fmt.Sprintf("every %d", n)
			if n == 3 {
				if !every.Stop() {
					t.Error("Stop of a running Every returned false")
				}
				// Had Stop not worked, more ticks would come before this.
				a.After(30*time.Millisecond, func() { fired <- "marker" })
			}
		})
	})
	var got []string
	for marker := false; !marker || !slices.Contains(got, "after"); {
		s := recv(t, fired, "timer")
		if s == "marker" {
			marker = true
			continue
		}
		got = append(got, s)
	}
	slices.Sort(got)
	if want := []string{"after", "every 1", "every 2", "every 3"}; !slices.Equal(got, want) {
		t.Fatalf("timers fired %v, want %v", got, want)
	}
}

// A stopped service's timers stop with it.
func TestTimersStopWithService(t *testing.T) {
	rt := newRuntime(t)
	var ticks atomic.Int32
	started := make(chan struct{}, 1)
	addr := start(t, rt, "ticker", func(a *service.Agent) error {
		a.Every(time.Millisecond, func() {
			if ticks.Add(1) == 3 {
				started <- struct{}{}
			}
		})
		return nil
	})
	recv(t, started, "three ticks")
	stop(t, rt, addr)
	n := ticks.Load()
	clock := startProbe(t, rt, "", nil)
	done := make(chan struct{})
	clock.Do(func(a *service.Agent) { a.After(50*time.Millisecond, func() { close(done) }) })
	recv(t, done, "clock")
	if m := ticks.Load(); m != n {
		t.Fatalf("a stopped service's timer ran %d more times", m-n)
	}
}

// stopper is a service that reports its stopping.
type stopper struct {
	stopped chan string
}

func (s *stopper) Setup(a *service.Agent) error {
	a.Export("hi", func() string { return "hi from " + a.Name() })
	return nil
}

func (s *stopper) Stopping(a *service.Agent) { s.stopped <- a.Name() }

// StartChild and Spawn start services and actors that stop with their
// parent.
func TestChildrenStopWithParent(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	stopped := make(chan string, 4)
	actorStopped := make(chan struct{}, 1)
	parent := startProbe(t, rt, "parent", nil)
	var child service.Address
	var helper, unnamed *actor.PID
	parent.Do(func(a *service.Agent) {
		var err error
		if child, err = a.StartChild("child", &stopper{stopped: stopped}); err != nil {
			t.Error(err)
		}
		if _, err := a.StartChild("broken", service.SetupFunc(func(*service.Agent) error { return errors.New("no") })); err != nil {
			t.Errorf("StartChild returns before Setup runs, got %v", err)
		}
		helper, err = a.Spawn("helper", func() actor.Actor {
			return actor.ReceiveFunc(func(c actor.Context) {
				switch m := c.Message().(type) {
				case string:
					c.Respond(m + "!")
				case *actor.Stopped:
					actorStopped <- struct{}{}
				}
			})
		})
		if err != nil {
			t.Error(err)
		}
		unnamed, _ = a.Spawn("", func() actor.Actor { return actor.ReceiveFunc(func(actor.Context) {}) })
	})
	waitFor(t, waitTimeout, "the child to be listed", func() bool { return len(rt.Lookup("child")) == 1 })
	if got := rt.Lookup("child")[0].Address; got != child {
		t.Fatalf("child listed at %v, StartChild said %v", got, child)
	}
	if s, err := service.CallFor[string](ctx, rt, child, "hi"); err != nil || s != "hi from child" {
		t.Fatalf("child call: %q, %v", s, err)
	}
	res, err := rt.Kernel().ActorSystem().Root.RequestFuture(helper, "ping", waitTimeout).Result()
	if err != nil || res != "ping!" {
		t.Fatalf("spawned actor: %v, %v", res, err)
	}
	if unnamed == nil || unnamed.Id == "" {
		t.Fatalf("unnamed actor %v", unnamed)
	}

	// The tree shows the child service and the actor under the parent.
	kinds := map[string]registry.ActorInfo{}
	waitFor(t, waitTimeout, "the tree", func() bool {
		clear(kinds)
		for _, info := range rt.Kernel().Tree().Snapshot() {
			kinds[info.Kind+"/"+info.Name] = info
		}
		_, broken := kinds[registry.KindService+"/broken"]
		return !broken
	})
	p, c, h := kinds[registry.KindService+"/parent"], kinds[registry.KindService+"/child"], kinds[registry.KindActor+"/helper"]
	if p.ID == "" || c.Parent != p.ID || h.Parent != p.ID || h.ID != helper.Id {
		t.Fatalf("tree: parent %+v child %+v helper %+v", p, c, h)
	}
	if _, ok := kinds[registry.KindRegistry+"/"]; !ok {
		t.Fatalf("no registry in the tree: %v", kinds)
	}

	stop(t, rt, parent.Addr)
	if name := recv(t, stopped, "child stopping"); name != "child" {
		t.Fatalf("Stopping called for %q", name)
	}
	recv(t, actorStopped, "spawned actor stopped")
	if l := rt.Lookup("child"); len(l) != 0 {
		t.Fatalf("child still listed after its parent stopped: %v", l)
	}
	_, err = rt.Call(ctx, child, "hi")
	wantFailure(t, err, service.CodeNoSuchService)
	for _, info := range rt.Kernel().Tree().Snapshot() {
		if info.Name == "helper" || info.Name == "child" || info.Name == "parent" {
			t.Fatalf("%+v still in the tree", info)
		}
	}
}

// A service is reachable at its own address while its Setup runs, so
// what Setup starts can answer at once: a publisher replays its kept
// reports the moment a subscription arrives, and that replay used to be
// dropped ("no service at") when it beat the registration, which comes
// after Setup. A message to itself from Setup is the same race made
// certain. A service whose Setup fails is unreachable again.
func TestReachableDuringSetup(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	got := make(chan string, 2)
	_, err := rt.Start(ctx, "early", service.SetupFunc(func(a *service.Agent) error {
		a.HandleMessages(a.Address(), "hello", func(m service.Message) { got <- m.ID })
		return a.SendMessage(a.Address(), "hello", "", 1, 1)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if id := recv(t, got, "the message Setup sent itself"); id != "hello" {
		t.Fatalf("got %q", id)
	}

	var failed service.Address
	_, err = rt.Start(ctx, "failing", service.SetupFunc(func(a *service.Agent) error {
		failed = a.Address()
		return errors.New("no config")
	}))
	if err == nil {
		t.Fatal("Start of a failing Setup succeeded")
	}
	probe := startProbe(t, rt, "", nil)
	probe.Do(func(a *service.Agent) {
		err := a.SendMessage(failed, "hello", "", 1, 1)
		if !errors.Is(err, service.ErrNoSuchService) {
			t.Errorf("message to a service whose Setup failed: %v", err)
		}
	})
}

// A Setup error (or panic) makes Start fail and the service never appears.
func TestSetupErrorFailsStart(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	all, sink := eventSink()
	stopWatch, err := rt.Watch(ctx, service.AllServices, sink)
	if err != nil {
		t.Fatal(err)
	}
	defer stopWatch.Cancel()

	noConfig := errors.New("no config")
	_, err = rt.Start(ctx, "broken", service.SetupFunc(func(a *service.Agent) error {
		a.Export("x", func() {})
		a.JoinGroup("g")
		return noConfig
	}))
	if !errors.Is(err, noConfig) || !strings.Contains(err.Error(), `"broken"`) {
		t.Fatalf("Start error = %v", err)
	}
	_, err = rt.Start(ctx, "panicky", service.SetupFunc(func(a *service.Agent) error { panic("oops") }))
	if err == nil || !strings.Contains(err.Error(), "setup panicked: oops") {
		t.Fatalf("Start error after a Setup panic = %v", err)
	}
	if _, err := rt.Start(ctx, "nil", nil); err == nil {
		t.Fatal("Start accepted a nil Service")
	}
	if l := rt.Lookup("broken"); len(l) != 0 {
		t.Fatalf("a service whose Setup failed is listed: %v", l)
	}
	if l := rt.LookupGroup("g"); len(l) != 0 {
		t.Fatalf("its group is listed: %v", l)
	}
	_, err = rt.Call(ctx, service.Name("broken"), "x")
	wantFailure(t, err, service.CodeNoSuchService)
	// The runtime goes on; the watcher saw only the good service.
	addr := startMath(t, rt)
	if v, err := service.CallFor[int](ctx, rt, addr, "multiply", 2, 3); err != nil || v != 6 {
		t.Fatalf("after failed starts: %d, %v", v, err)
	}
	wantEvents(t, all, avail("math", addr))
}

// Close fails waiting calls with CodeShutdown, and the runtime refuses
// what comes after.
func TestCloseFailsWaitingCallsAndLaterCalls(t *testing.T) {
	rt := newRuntime(t, service.Config{CallTimeout: 20 * time.Second})
	ctx := testCtx(t)
	entered := make(chan struct{}, 1)
	stopped := make(chan string, 1)
	start(t, rt, "parker", func(a *service.Agent) error {
		a.Export("park", func(r *service.Request) {
			r.Delay()
			entered <- struct{}{}
		})
		return nil
	})
	if _, err := rt.Start(ctx, "stopper", &stopper{stopped: stopped}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	go func() {
		_, err := rt.Call(context.Background(), service.Name("parker"), "park")
		errs <- err
	}()
	recv(t, entered, "parked call")
	if rt.Kernel().Closed() {
		t.Fatal("Closed() before Close")
	}
	t0 := time.Now()
	if err := rt.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	err := recv(t, errs, "failed call")
	f := wantFailure(t, err, service.CodeShutdown)
	if !errors.Is(err, service.ErrShutdown) || f.Origin != service.OriginRuntime {
		t.Fatalf("shutdown failure = %+v", f)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("waiting call failed %v after Close", d)
	}
	if name := recv(t, stopped, "Stopping"); name != "stopper" {
		t.Fatalf("Stopping ran for %q", name)
	}
	if !rt.Kernel().Closed() {
		t.Fatal("Closed() false after Close")
	}
	_, err = rt.Call(ctx, service.Name("parker"), "park")
	wantFailure(t, err, service.CodeShutdown)
	_, err = rt.Start(ctx, "late", service.SetupFunc(func(*service.Agent) error { return nil }))
	wantFailure(t, err, service.CodeShutdown)
	if _, err := rt.Watch(ctx, service.AllServices, func(service.RegistryEvent) {}); err == nil {
		t.Fatal("Watch after Close succeeded")
	}
	if err := rt.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// StopService refuses addresses that are not local services.
func TestStopServiceUnknown(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	err := rt.StopService(ctx, service.Address{Process: rt.ProcessID(), ID: 4242})
	wantFailure(t, err, service.CodeNoSuchService)
	err = rt.StopService(ctx, service.Address{Process: rt.ProcessID() + 1, ID: 1})
	wantFailure(t, err, service.CodeNoSuchService)
	addr := startMath(t, rt)
	stop(t, rt, addr)
	wantFailure(t, rt.StopService(ctx, addr), service.CodeNoSuchService)
}

// A service can stop itself from a handler; the caller still gets its answer.
func TestAgentStopFromHandler(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	addr := start(t, rt, "selfstop", func(a *service.Agent) error {
		a.Export("quit", func() string {
			a.Stop()
			return "bye"
		})
		return nil
	})
	events, sink := eventSink()
	stopWatch, err := rt.Watch(ctx, addr, sink)
	if err != nil {
		t.Fatal(err)
	}
	defer stopWatch.Cancel()
	wantEvents(t, events, avail("selfstop", addr))
	if s, err := service.CallFor[string](ctx, rt, addr, "quit"); err != nil || s != "bye" {
		t.Fatalf("quit: %q, %v", s, err)
	}
	wantEvents(t, events, withdrawn("selfstop", addr))
	// Right after the withdrawal the service may still be stopping: a
	// call then fails as withdrawn, and once it is gone as no such service.
	waitFor(t, waitTimeout, "the service to be gone", func() bool {
		_, err := rt.Call(ctx, addr, "quit")
		var f *service.Failure
		if !errors.As(err, &f) || (f.Code != service.CodeWithdrawn && f.Code != service.CodeNoSuchService) {
			t.Fatalf("call to a stopped service: %v", err)
		}
		return f.Code == service.CodeNoSuchService
	})
}

// Runtime accessors.
func TestRuntimeAccessors(t *testing.T) {
	before := time.Now()
	rt := newRuntime(t, service.Config{Node: "n1", ProcessID: 0x1234})
	if rt.Node() != "n1" || rt.ProcessID() != 0x1234 || rt.Logger() == nil || rt.Kernel().ActorSystem() == nil {
		t.Fatalf("accessors: %q %v", rt.Node(), rt.ProcessID())
	}
	if rt.Kernel().Started().Before(before) || rt.Kernel().Started().After(time.Now()) {
		t.Fatalf("Started() = %v", rt.Kernel().Started())
	}
	if rt.Kernel().MaxPayload() != registry.DefaultMaxPayload {
		t.Fatalf("MaxPayload() = %d", rt.Kernel().MaxPayload())
	}
	p := startProbe(t, rt, "acc", nil, service.Audience("grp"))
	p.Do(func(a *service.Agent) {
		if a.Name() != "acc" || a.Address() != p.Addr || a.Audience() != "grp" || a.Runtime() != rt ||
			a.Logger() == nil {
			t.Errorf("agent accessors: %q %v %q", a.Name(), a.Address(), a.Audience())
		}
	})
	if p.Addr.Process != 0x1234 || p.Addr.ID == 0 {
		t.Fatalf("address %v", p.Addr)
	}
	if len(rt.Kernel().Processes()) != 0 {
		t.Fatalf("Processes() = %v", rt.Kernel().Processes())
	}
}
