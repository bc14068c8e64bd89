package service_test

import (
	"slices"
	"testing"

	"github.com/netsvc-go/netsvc/service"
)

// Rule 2: audience "" is visible, and callable, inside its own process.
func TestAudienceEmptyVisibleInOwnProcess(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	priv := start(t, rt, "private", func(a *service.Agent) error {
		if a.Audience() != "" {
			t.Errorf("Agent.Audience() = %q, want empty", a.Audience())
		}
		a.Export("ping", func() string { return "pong" })
		return nil
	}, service.Audience(""))
	pub := start(t, rt, "public", func(a *service.Agent) error { return nil })

	bs := rt.Lookup("private")
	if len(bs) != 1 {
		t.Fatalf("Lookup(private) = %v, want one binding", bs)
	}
	b := bs[0]
	if b.Address != priv || b.Audience != "" || !b.Local || b.Node != "test" || b.Location() != "local" || b.Process() != rt.ProcessID() {
		t.Fatalf("binding = %+v", b)
	}
	if got, ok := rt.LookupAddress(pub); !ok || got.Audience != "*" {
		t.Fatalf("default audience: LookupAddress = %+v, %v; want audience *", got, ok)
	}
	if !slices.Contains(addrs(rt.Services()), priv) {
		t.Fatalf("Services() = %v, want it to list %v", rt.Services(), priv)
	}
	got, err := service.CallFor[string](ctx, rt, service.Name("private"), "ping")
	if err != nil || got != "pong" {
		t.Fatalf("call from the runtime: %q, %v", got, err)
	}
	// Another service of the process sees and calls it too.
	caller := startProbe(t, rt, "", nil)
	caller.Do(func(a *service.Agent) {
		if l := a.Lookup("private"); len(l) != 1 || l[0].Address != priv {
			t.Errorf("Agent.Lookup(private) = %v", l)
		}
		res, err := service.CallFor[string](ctx, a, service.Name("private"), "ping")
		if err != nil || res != "pong" {
			t.Errorf("call from a service: %q, %v", res, err)
		}
	})
}

// Rule 27: a hidden service can be neither seen nor called until it
// announces itself; then it appears with every group it joined.
func TestHiddenServiceAnnouncesLater(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	all, sink := eventSink()
	stopWatch, err := rt.Watch(ctx, service.AllServices, sink)
	if err != nil {
		t.Fatal(err)
	}
	defer stopWatch.Cancel()

	shy := start(t, rt, "shy", func(a *service.Agent) error {
		a.Export("hello", func() string { return "hi" })
		// Announce once "go" appears: the end of a slow initialisation.
		a.Watch(service.Name("go"), func(ev service.RegistryEvent) {
			if ev.Kind == service.Available {
				a.JoinGroup("late")
				a.Announce()
				a.Announce() // a second announce does nothing
			}
		})
		return nil
	}, service.Hidden(), service.Groups("early"))

	if l := rt.Lookup("shy"); len(l) != 0 {
		t.Fatalf("hidden service listed: %v", l)
	}
	if _, ok := rt.LookupAddress(shy); ok {
		t.Fatal("hidden service found by address")
	}
	if l := rt.LookupGroup("early"); len(l) != 0 {
		t.Fatalf("hidden service listed in its group: %v", l)
	}
	_, err = rt.Call(ctx, service.Name("shy"), "hello")
	wantFailure(t, err, service.CodeNoSuchService)
	_, err = rt.Call(ctx, shy, "hello")
	wantFailure(t, err, service.CodeNoSuchService)

	goAddr := start(t, rt, "go", func(a *service.Agent) error { return nil })
	wantEvents(t, all,
		avail("go", goAddr),
		avail("shy", shy),
		joined("shy", shy, "early"),
		joined("shy", shy, "late"),
	)
	b, ok := rt.LookupAddress(shy)
	if !ok || !slices.Equal(b.Groups, []string{"early", "late"}) {
		t.Fatalf("after announce: %+v, %v", b, ok)
	}
	got, err := service.CallFor[string](ctx, rt, shy, "hello")
	if err != nil || got != "hi" {
		t.Fatalf("call after announce: %q, %v", got, err)
	}
	// Nothing more came: the next event is the next change.
	marker := start(t, rt, "marker", func(a *service.Agent) error { return nil })
	wantEvents(t, all, avail("marker", marker))
}

// An anonymous service is never listed, yet it can call and be called
// by address.
func TestAnonymousServiceNeverListed(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	all, sink := eventSink()
	stopWatch, err := rt.Watch(ctx, service.AllServices, sink)
	if err != nil {
		t.Fatal(err)
	}
	defer stopWatch.Cancel()

	senders := make(chan service.Address, 1)
	math := start(t, rt, "math", func(a *service.Agent) error {
		a.Export("who", func(r *service.Request) string {
			senders <- r.Sender()
			return "math"
		})
		return nil
	})
	anon := startProbe(t, rt, "", func(a *service.Agent) {
		a.JoinGroup("anon-group")
	})
	anon.Do(func(a *service.Agent) {
		if a.Name() != "" {
			t.Errorf("Name() = %q", a.Name())
		}
		a.JoinGroup("another")
		res, err := service.CallFor[string](ctx, a, math, "who")
		if err != nil || res != "math" {
			t.Errorf("anonymous caller: %q, %v", res, err)
		}
	})
	if s := recv(t, senders, "sender"); s != anon.Addr {
		t.Fatalf("sender = %v, want the anonymous service %v", s, anon.Addr)
	}
	if _, ok := rt.LookupAddress(anon.Addr); ok {
		t.Fatal("anonymous service found by address")
	}
	if slices.Contains(addrs(rt.Services()), anon.Addr) {
		t.Fatal("anonymous service in Services()")
	}
	if l := rt.Lookup(""); len(l) != 0 {
		t.Fatalf("Lookup(\"\") = %v", l)
	}
	if l := rt.LookupGroup("anon-group"); len(l) != 0 {
		t.Fatalf("anonymous group member listed: %v", l)
	}
	marker := start(t, rt, "marker", func(a *service.Agent) error { return nil })
	// The watcher saw math and marker and nothing of the anonymous one.
	wantEvents(t, all, avail("math", math), avail("marker", marker))
}

// Rule 12, by name: existing bindings first, then changes; no group events.
func TestWatchByName(t *testing.T) {
	rt := newRuntime(t)
	w1 := startProbe(t, rt, "w", nil, service.Groups("g"))
	start(t, rt, "other", func(a *service.Agent) error { return nil })
	watcher := startProbe(t, rt, "", nil)
	events, sink := eventSink()
	watcher.Do(func(a *service.Agent) { a.Watch(service.Name("w"), sink) })
	wantEvents(t, events, avail("w", w1.Addr))

	w2 := start(t, rt, "w", func(a *service.Agent) error { return nil })
	w1.Do(func(a *service.Agent) { a.JoinGroup("h") })
	stop(t, rt, w1.Addr)
	// The join of "h" is not told to name watchers; the withdrawal is.
	wantEvents(t, events, avail("w", w2), withdrawn("w", w1.Addr))
	w3 := start(t, rt, "w", func(a *service.Agent) error { return nil })
	wantEvents(t, events, avail("w", w3))
	empty(t, events, "event")
}

// Rule 12, by address: the binding and its groups, then group changes,
// then group leaves before the withdrawal.
func TestWatchByAddress(t *testing.T) {
	rt := newRuntime(t)
	w := startProbe(t, rt, "w", nil, service.Groups("a"))
	watcher := startProbe(t, rt, "", nil)
	events, sink := eventSink()
	watcher.Do(func(a *service.Agent) { a.Watch(w.Addr, sink) })
	wantEvents(t, events, avail("w", w.Addr), joined("w", w.Addr, "a"))

	start(t, rt, "w", func(a *service.Agent) error { return nil }) // another address: not told
	w.Do(func(a *service.Agent) {
		a.JoinGroup("b")
		a.LeaveGroup("a")
	})
	wantEvents(t, events, joined("w", w.Addr, "b"), left("w", w.Addr, "a"))
	stop(t, rt, w.Addr)
	wantEvents(t, events, left("w", w.Addr, "b"), withdrawn("w", w.Addr))

	// An address nobody serves is reported withdrawn at once.
	gone := make(chan service.RegistryEvent, 1)
	nowhere := service.Address{Process: rt.ProcessID(), ID: 9999}
	watcher.Do(func(a *service.Agent) {
		a.Watch(nowhere, func(ev service.RegistryEvent) { gone <- ev })
	})
	ev := recv(t, gone, "withdrawal of an unknown address")
	if ev.Kind != service.Withdrawn || ev.Binding.Address != nowhere {
		t.Fatalf("watch of an unknown address: %v", ev)
	}
}

// Rule 12, by group: members (joins) first, then joins and leaves only.
func TestWatchByGroup(t *testing.T) {
	rt := newRuntime(t)
	m1 := startProbe(t, rt, "m1", func(a *service.Agent) {
		a.JoinGroup("g")
		a.JoinGroup("g") // twice: still one membership
	})
	if b, _ := rt.LookupAddress(m1.Addr); !slices.Equal(b.Groups, []string{"g"}) {
		t.Fatalf("groups after joining twice in Setup: %v", b.Groups)
	}
	m2 := startProbe(t, rt, "m2", nil)
	watcher := startProbe(t, rt, "", nil)
	events, sink := eventSink()
	watcher.Do(func(a *service.Agent) { a.Watch(service.Group("g"), sink) })
	wantEvents(t, events, joined("m1", m1.Addr, "g"))

	m2.Do(func(a *service.Agent) {
		a.JoinGroup("g")
		a.JoinGroup("other")
	})
	m1.Do(func(a *service.Agent) { a.LeaveGroup("g") })
	stop(t, rt, m2.Addr)
	m3 := start(t, rt, "m3", func(a *service.Agent) error { return nil }, service.Groups("g"))
	wantEvents(t, events,
		joined("m2", m2.Addr, "g"),
		left("m1", m1.Addr, "g"),
		left("m2", m2.Addr, "g"), // a withdrawal leaves the group; no Withdrawn event here
		joined("m3", m3, "g"),
	)
	if l := rt.LookupGroup("g"); !slices.Equal(addrs(l), []service.Address{m3}) {
		t.Fatalf("LookupGroup(g) = %v", l)
	}
}

// Scenario 14 (REG1, REG5): a registry watch gets each binding followed
// by its groups; a withdrawal sends the group leaves first.
func TestWatchAllSnapshotAndWithdrawalOrder(t *testing.T) {
	rt := newRuntime(t)
	other := start(t, rt, "other", func(a *service.Agent) error { return nil })
	eq1 := start(t, rt, "eq1", func(a *service.Agent) error {
		a.JoinGroup("a")
		a.JoinGroup("b")
		return nil
	})
	watcher := startProbe(t, rt, "", nil)
	all, allSink := eventSink()
	group, groupSink := eventSink()
	name, nameSink := eventSink()
	watcher.Do(func(a *service.Agent) {
		a.Watch(service.AllServices, allSink)
		a.Watch(service.Group("a"), groupSink)
		a.Watch(service.Name("eq1"), nameSink)
	})
	wantEvents(t, all, avail("other", other), avail("eq1", eq1), joined("eq1", eq1, "a"), joined("eq1", eq1, "b"))
	wantEvents(t, group, joined("eq1", eq1, "a"))
	wantEvents(t, name, avail("eq1", eq1))

	stop(t, rt, eq1)
	wantEvents(t, all, left("eq1", eq1, "a"), left("eq1", eq1, "b"), withdrawn("eq1", eq1))
	wantEvents(t, group, left("eq1", eq1, "a"))
	wantEvents(t, name, withdrawn("eq1", eq1))

	// Barrier: a new service's events come next, nothing in between.
	next := start(t, rt, "eq1", func(a *service.Agent) error { return nil }, service.Groups("a"))
	wantEvents(t, all, avail("eq1", next), joined("eq1", next, "a"))
	wantEvents(t, group, joined("eq1", next, "a"))
	wantEvents(t, name, avail("eq1", next))
}

// REG6: joining a group twice, or leaving one not joined, does nothing.
func TestJoinTwiceAndLeaveUnjoinedDoNothing(t *testing.T) {
	rt := newRuntime(t)
	m := startProbe(t, rt, "m", nil)
	watcher := startProbe(t, rt, "", nil)
	events, sink := eventSink()
	watcher.Do(func(a *service.Agent) { a.Watch(m.Addr, sink) })
	wantEvents(t, events, avail("m", m.Addr))

	m.Do(func(a *service.Agent) {
		a.JoinGroup("a")
		a.JoinGroup("a")
		a.LeaveGroup("never-joined")
		a.JoinGroup("") // empty group names are ignored
		a.LeaveGroup("")
		a.JoinGroup("marker")
	})
	wantEvents(t, events, joined("m", m.Addr, "a"), joined("m", m.Addr, "marker"))
	if b, _ := rt.LookupAddress(m.Addr); !slices.Equal(b.Groups, []string{"a", "marker"}) || !b.InGroup("a") || b.InGroup("never-joined") {
		t.Fatalf("groups = %v", b.Groups)
	}
	m.Do(func(a *service.Agent) {
		a.LeaveGroup("a")
		a.LeaveGroup("a")
		a.LeaveGroup("marker")
	})
	wantEvents(t, events, left("m", m.Addr, "a"), left("m", m.Addr, "marker"))
	if l := rt.LookupGroup("a"); len(l) != 0 {
		t.Fatalf("LookupGroup(a) after leaving = %v", l)
	}
}

// Groups joined and left in Setup and later, and the Groups option.
func TestGroupsInSetupAndLater(t *testing.T) {
	rt := newRuntime(t)
	m := startProbe(t, rt, "m", func(a *service.Agent) {
		a.JoinGroup("a")
		a.JoinGroup("b")
		a.LeaveGroup("b")
		a.LeaveGroup("c") // from the option, before the service is listed
	}, service.Groups("c", "", "d"))
	b, _ := rt.LookupAddress(m.Addr)
	if !slices.Equal(b.Groups, []string{"d", "a"}) {
		t.Fatalf("groups after Setup = %v, want [d a]", b.Groups)
	}
	m.Do(func(a *service.Agent) { a.JoinGroup("e") })
	waitFor(t, waitTimeout, "the join to reach the registry", func() bool {
		return len(rt.LookupGroup("e")) == 1
	})
	m.Do(func(a *service.Agent) { a.LeaveGroup("d") })
	waitFor(t, waitTimeout, "the leave to reach the registry", func() bool {
		return len(rt.LookupGroup("d")) == 0
	})
	b, _ = rt.LookupAddress(m.Addr)
	if !slices.Equal(b.Groups, []string{"a", "e"}) {
		t.Fatalf("groups = %v, want [a e]", b.Groups)
	}
}

// Watch.Cancel: no event reaches the handler afterwards.
func TestWatchCancelStopsEvents(t *testing.T) {
	rt := newRuntime(t)
	watcher := startProbe(t, rt, "", nil)
	cancelled, cancelledSink := eventSink()
	markers, markerSink := eventSink()
	var w *service.Watch
	watcher.Do(func(a *service.Agent) {
		w = a.Watch(service.Name("x"), cancelledSink)
		a.Watch(service.Name("marker"), markerSink)
	})
	x1 := start(t, rt, "x", func(a *service.Agent) error { return nil })
	wantEvents(t, cancelled, avail("x", x1))
	watcher.Do(func(a *service.Agent) {
		w.Cancel()
		w.Cancel() // twice is harmless
	})
	start(t, rt, "x", func(a *service.Agent) error { return nil })
	stop(t, rt, x1)
	m := start(t, rt, "marker", func(a *service.Agent) error { return nil })
	wantEvents(t, markers, avail("marker", m))
	// The registry tells each watcher in order: had the cancelled watch
	// still been live, its events would have come before the marker's.
	watcher.Do(func(*service.Agent) {})
	empty(t, cancelled, "event after Cancel")
}

// Runtime.Watch runs a handler for events until stopped.
func TestRuntimeWatch(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	r1 := start(t, rt, "rw", func(a *service.Agent) error { return nil })
	events, sink := eventSink()
	stopWatch, err := rt.Watch(ctx, service.Name("rw"), sink)
	if err != nil {
		t.Fatal(err)
	}
	// Watch returns once the snapshot is queued: it is first.
	wantEvents(t, events, avail("rw", r1))
	r2 := start(t, rt, "rw", func(a *service.Agent) error { return nil })
	stop(t, rt, r1)
	wantEvents(t, events, avail("rw", r2), withdrawn("rw", r1))

	stopWatch.Cancel()
	stop(t, rt, r2)
	r3 := start(t, rt, "rw", func(a *service.Agent) error { return nil })
	// A second watch sees r3; the stopped one, whose service is gone,
	// can no longer run its handler.
	later, laterSink := eventSink()
	stop2, err := rt.Watch(ctx, service.Name("rw"), laterSink)
	if err != nil {
		t.Fatal(err)
	}
	defer stop2.Cancel()
	wantEvents(t, later, avail("rw", r3))
	empty(t, events, "event after stop")
}

// Rule 13 in one process: Lookup lists the earliest seen first, and
// calls by name take turns over the services of that name.
func TestLookupAndCallByNameTakeTurns(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	var ws []service.Address
	for i := 1; i <= 3; i++ {
		n := i
		ws = append(ws, start(t, rt, "w", func(a *service.Agent) error {
			a.Export("id", func() int { return n })
			return nil
		}, service.Groups("workers")))
	}
	if got := addrs(rt.Lookup("w")); !slices.Equal(got, ws) {
		t.Fatalf("Lookup(w) = %v, want %v", got, ws)
	}
	if got := addrs(rt.LookupGroup("workers")); !slices.Equal(got, ws) {
		t.Fatalf("LookupGroup(workers) = %v, want %v", got, ws)
	}
	if got := addrs(rt.Services()); !slices.Equal(got, ws) {
		t.Fatalf("Services() = %v, want %v", got, ws)
	}
	ids := func(target service.Target, n int) []int {
		var got []int
		for range n {
			id, err := service.CallFor[int](ctx, rt, target, "id")
			if err != nil {
				t.Fatalf("call %v: %v", target, err)
			}
			got = append(got, id)
		}
		slices.Sort(got)
		return got
	}
	if got := ids(service.Name("w"), 6); !slices.Equal(got, []int{1, 1, 2, 2, 3, 3}) {
		t.Fatalf("6 calls by name ran on %v; want each service twice", got)
	}
	if got := ids(service.Group("workers"), 3); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("3 calls to the group ran on %v; want each member once", got)
	}
	stop(t, rt, ws[0])
	start(t, rt, "w", func(a *service.Agent) error {
		a.Export("id", func() int { return 4 })
		return nil
	})
	if got := ids(service.Name("w"), 3); !slices.Equal(got, []int{2, 3, 4}) {
		t.Fatalf("3 calls by name after the first was replaced ran on %v; want 2, 3, 4", got)
	}
	if l := rt.Lookup("nobody"); len(l) != 0 {
		t.Fatalf("Lookup(nobody) = %v", l)
	}
}
