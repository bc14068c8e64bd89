package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// Tests of the bounds a slow or hostile peer meets (rules 25, 36)
// and of the watch on handlers that run too long.

// logSink keeps log records for tests to look at.
type logSink struct {
	mu   sync.Mutex
	recs []logRecord
}

type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

func (s *logSink) logger() *slog.Logger { return slog.New(&sinkHandler{sink: s}) }

// find returns the records at level whose message contains text.
func (s *logSink) find(level slog.Level, text string) []logRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []logRecord
	for _, r := range s.recs {
		if r.Level == level && strings.Contains(r.Msg, text) {
			out = append(out, r)
		}
	}
	return out
}

type sinkHandler struct {
	sink  *logSink
	attrs []slog.Attr
}

func (h *sinkHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *sinkHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.sink.mu.Lock()
	h.sink.recs = append(h.sink.recs, rec)
	h.sink.mu.Unlock()
	return nil
}

func (h *sinkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &sinkHandler{sink: h.sink, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *sinkHandler) WithGroup(string) slog.Handler { return h }

// serviceStats returns the counters of the local service at addr.
func serviceStats(t testing.TB, rt *service.Runtime, addr service.Address) registry.ServiceStats {
	t.Helper()
	for _, s := range rt.Kernel().Stats().Services {
		if s.Address == addr {
			return s
		}
	}
	t.Fatalf("no stats for %s", addr)
	return registry.ServiceStats{}
}

// treeDetail returns the tree's detail of the service actor at addr.
func treeDetail(t testing.TB, rt *service.Runtime, addr service.Address) map[string]any {
	t.Helper()
	for _, a := range rt.Kernel().Tree().Snapshot() {
		if a.Kind == registry.KindService && a.Detail["address"] == addr.String() {
			return a.Detail
		}
	}
	t.Fatalf("no service actor for %s in the tree", addr)
	return nil
}

// startGated starts a service whose "block" method blocks until release
// is called (at the latest when the test ends); blocked receives once it
// has started.
func startGated(t testing.TB, rt *service.Runtime, name string, setup func(a *service.Agent)) (addr service.Address, release func(), blocked chan string) {
	gate, blocked := make(chan struct{}), make(chan string, 10)
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	addr = start(t, rt, name, func(a *service.Agent) error {
		a.Export("block", func(r *service.Request) {
			blocked <- r.Method()
			<-gate
		})
		if setup != nil {
			setup(a)
		}
		return nil
	})
	t.Cleanup(release) // runs before the runtime's Close
	return addr, release, blocked
}

// Rule 25: a request that does not fit in the service's queue is
// refused with CodeOverloaded; over a link its failure says it never
// reached a handler (NotRun), so the caller may try elsewhere.
func TestServiceQueueRefusesRequestsOverLimit(t *testing.T) {
	const limit = 2048
	rt := newRuntime(t, service.Config{ProcessID: here, ServiceQueueLimit: limit})
	ctx := testCtx(t)
	addr, release, blocked := startGated(t, rt, "slow", func(a *service.Agent) {
		a.Export("size", func(b []byte) int { return len(b) })
	})
	first := callAsync(ctx, rt, addr, "block")
	recv(t, blocked, "the handler to block")
	big := make([]byte, 1200)
	queued := callAsync(ctx, rt, addr, "size", big) // fits
	waitFor(t, waitTimeout, "the request to queue", func() bool { return serviceStats(t, rt, addr).QueuedBytes > 1200 })

	_, err := rt.Call(ctx, addr, "size", big)
	wantFailure(t, err, service.CodeOverloaded)

	la := newFakeLink("A", procA)
	rt.Kernel().LearnRoute(procA, la)
	args, _ := registry.EncodeArgs(big)
	rt.Kernel().Deliver(&registry.Envelope{Kind: registry.KindRequest, To: addr, From: service.Address{Process: procA, ID: 5}, Conv: 90,
		Subject: "size", ContentType: args.ContentType, Data: args.Data}, la)
	fe := recv(t, la.sent, "the failure")
	f := decode[service.Failure](t, service.Payload{ContentType: fe.ContentType, Data: fe.Data})
	if fe.Kind != registry.KindFailure || fe.Conv != 90 || f.Code != service.CodeOverloaded || !fe.NotRun {
		t.Fatalf("failure envelope %+v: %+v; want CodeOverloaded, NotRun", fe, f)
	}

	release()
	if err := recv(t, first, "the blocked call"); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, queued, "the queued call"); err != nil {
		t.Fatal(err)
	}
	if s := serviceStats(t, rt, addr); s.Refused != 2 || s.Dropped != 0 || s.Name != "slow" {
		t.Fatalf("service stats %+v; want 2 refused", s)
	}
}

// fakeFrames encodes reports for a fake EncodedBatch: a length byte, then
// the report's data.
func fakeFrames(sizes ...int) []byte {
	var b []byte
	for _, n := range sizes {
		b = append(b, byte(n))
		b = append(b, make([]byte, n)...)
	}
	return b
}

func fakeDecode(b []byte, e *registry.Envelope) ([]byte, error) {
	n := int(b[0])
	if len(b) < 1+n {
		return nil, fmt.Errorf("short frame")
	}
	*e = registry.Envelope{Kind: registry.KindReport, From: service.Address{Process: procA, ID: 1}, Subject: "s", Pattern: "s",
		ContentType: service.ContentCBOR, Data: b[1 : 1+n]}
	return b[1+n:], nil
}

// Rule 25 for batches from links: a Droppable batch is one more
// droppable message (older ones make room for it, or it is dropped
// whole, every envelope counted); a batch that may hold requests and
// does not fit is handed back (false).
func TestServiceQueueDroppableBatches(t *testing.T) {
	const limit = 1024
	rt := newRuntime(t, service.Config{ProcessID: here, ServiceQueueLimit: limit})
	addr, release, blocked := startGated(t, rt, "sink", nil)
	done := callAsync(testCtx(t), rt, addr, "block")
	recv(t, blocked, "the handler to block")
	deliver := func(droppable bool, sizes ...int) bool {
		return rt.Kernel().DeliverEncoded(addr.ID, &registry.EncodedBatch{Data: fakeFrames(sizes...), Decode: fakeDecode, Droppable: droppable})
	}
	check := func(what string, queued int64, dropped uint64) {
		t.Helper()
		if s := serviceStats(t, rt, addr); s.QueuedBytes != queued || s.Dropped != dropped {
			t.Fatalf("%s: queued %d, dropped %d; want %d, %d", what, s.QueuedBytes, s.Dropped, queued, dropped)
		}
	}
	if !deliver(true, 150, 150, 150) || !deliver(true, 150, 150, 150) {
		t.Fatal("batches that fit were refused")
	}
	check("two batches", 906, 0)
	if !deliver(true, 200, 200) {
		t.Fatal("a droppable batch was refused")
	}
	check("a third batch, the first dropped to make room", 855, 3)
	// A batch larger than the whole limit is handed back: one by one,
	// its newest envelopes survive (dropped whole, they would not).
	if deliver(true, 219, 219, 219, 219, 219) {
		t.Fatal("a droppable batch larger than the limit was taken whole")
	}
	check("a batch that cannot fit, handed back", 855, 3)
	if deliver(false, 200, 200) {
		t.Fatal("a batch that may hold requests was taken over the limit")
	}
	check("a batch handed back", 855, 3)
	if s := rt.Kernel().Stats(); s.ServiceDrops != 3 {
		t.Fatalf("Stats().ServiceDrops = %d, want 3", s.ServiceDrops)
	}
	release()
	if err := recv(t, done, "the blocked call"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "the queue to drain", func() bool { return serviceStats(t, rt, addr).QueuedBytes == 0 })
}

// A handler that runs past SlowHandler is logged once at Warn (service,
// address, method, for how long), shows as stuck in the tree and the
// stats, and is logged again at Info when it finishes.
func TestSlowHandlerFlagged(t *testing.T) {
	const slow = 100 * time.Millisecond
	var logs logSink
	rt := newRuntime(t, service.Config{Logger: logs.logger(), SlowHandler: slow})
	addr, release, blocked := startGated(t, rt, "busy", nil)
	done := callAsync(testCtx(t), rt, addr, "block")
	recv(t, blocked, "the handler to block")

	waitFor(t, waitTimeout, "the warning", func() bool { return len(logs.find(slog.LevelWarn, "running for")) > 0 })
	w := logs.find(slog.LevelWarn, "running for")[0]
	if w.Attrs["service"] != "busy" || w.Attrs["address"] != addr.String() || w.Attrs["method"] != "block" || w.Attrs["busy_for"] == "" {
		t.Fatalf("warning %+v", w)
	}
	if d := treeDetail(t, rt, addr); d["stuck"] != true || d["busy_for_s"].(float64) < slow.Seconds() {
		t.Fatalf("tree detail %v; want stuck, busy for %v or more", d, slow)
	}
	if s := serviceStats(t, rt, addr); !s.Stuck || s.BusySeconds < slow.Seconds() {
		t.Fatalf("service stats %+v; want stuck", s)
	}
	// Still busy three thresholds on: still one warning.
	waitFor(t, waitTimeout, "more time", func() bool { return serviceStats(t, rt, addr).BusySeconds > 3*slow.Seconds() })
	if n := len(logs.find(slog.LevelWarn, "running for")); n != 1 {
		t.Fatalf("%d warnings for one episode", n)
	}
	if n := len(logs.find(slog.LevelInfo, "finished after")); n != 0 {
		t.Fatal("finished before it was released")
	}

	release()
	if err := recv(t, done, "the blocked call"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "the finished line", func() bool { return len(logs.find(slog.LevelInfo, "finished after")) == 1 })
	if f := logs.find(slog.LevelInfo, "finished after")[0]; f.Attrs["service"] != "busy" || f.Attrs["method"] != "block" {
		t.Fatalf("finished line %+v", f)
	}
	if s := serviceStats(t, rt, addr); s.Stuck || s.BusySeconds != 0 {
		t.Fatalf("service stats after release %+v", s)
	}
	if d := treeDetail(t, rt, addr); d["stuck"] != nil || d["busy_for_s"] != nil {
		t.Fatalf("tree detail after release %v", d)
	}
	// Fast handlers are not flagged.
	for i := 0; i < 20; i++ {
		if _, err := rt.Call(testCtx(t), addr, execMethodMissing); err == nil {
			t.Fatal("a missing method answered")
		}
	}
	if n := len(logs.find(slog.LevelWarn, "running for")); n != 1 {
		t.Fatalf("%d warnings after fast calls", n)
	}
}

const execMethodMissing = "no.such.method"

// Rule 36: the subscription patterns publishers hold for another
// process are bounded per process and in all; one over is ignored, logged
// (once a minute per publisher) and counted; a slot comes back when its
// pattern goes, however it goes. Local subscribers are not limited.
func TestSubscriptionLimits(t *testing.T) {
	var logs logSink
	rt := newRuntime(t, service.Config{ProcessID: here, Logger: logs.logger(), MaxSubscriptionsPerProcess: 3, MaxSubscriptions: 5})
	la, lb := newFakeLink("A", procA), newFakeLink("B", procB)
	for _, l := range []*fakeLink{la, lb} {
		rt.Kernel().Import(l, registry.Change{Kind: service.Available, Process: true,
			Binding: service.Binding{Address: service.Address{Process: l.peer}, Node: "n" + l.id}})
	}
	rt.Kernel().Sync()
	pub := startProbe(t, rt, "pub", nil)
	subA, subB := service.Address{Process: procA, ID: 1}, service.Address{Process: procB, ID: 1}
	subscribe := func(l *fakeLink, from service.Address, kind registry.Kind, patterns ...string) {
		for _, p := range patterns {
			rt.Kernel().Deliver(&registry.Envelope{Kind: kind, To: pub.Addr, From: from, Subject: p}, l)
		}
	}
	held := func() map[service.Address]int {
		out := map[service.Address]int{}
		pub.Do(func(a *service.Agent) {
			for s, ps := range a.Subscribers() {
				out[s] = len(ps)
			}
		})
		return out
	}
	subscribe(la, subA, registry.KindSubscribe, "a.1", "a.2", "a.3", "a.4", "a.1")
	subscribe(lb, subB, registry.KindSubscribe, "b.1", "b.2", "b.3")
	// A local subscriber with more patterns than either bound.
	local := startProbe(t, rt, "local", nil)
	local.Do(func(a *service.Agent) {
		for i := 0; i < 7; i++ {
			if _, err := a.Subscribe(pub.Addr, fmt.Sprintf("l.%d", i), func(service.Report) {}); err != nil {
				t.Error(err)
			}
		}
	})
	waitFor(t, waitTimeout, "the local subscriptions", func() bool { return held()[local.Addr] == 7 })
	if h := held(); h[subA] != 3 || h[subB] != 2 {
		t.Fatalf("patterns held %v; want 3 for A (its bound), 2 for B (the node's)", h)
	}
	if s := rt.Kernel().Stats(); s.Subscriptions != 5 || s.SubscriptionsRefused != 2 {
		t.Fatalf("stats: %d held, %d refused; want 5, 2", s.Subscriptions, s.SubscriptionsRefused)
	}
	if w := logs.find(slog.LevelWarn, "ignoring subscriptions"); len(w) != 1 || w[0].Attrs["refused"] != "1" || w[0].Attrs["reason"] == "" {
		t.Fatalf("want one rate-limited warning with a count and a reason, got %+v", w)
	}

	// Unsubscribing gives a slot back: B may take it.
	subscribe(la, subA, registry.KindUnsubscribe, "a.2")
	subscribe(lb, subB, registry.KindSubscribe, "b.3")
	if h := held(); h[subA] != 2 || h[subB] != 3 {
		t.Fatalf("after an unsubscribe, held %v", h)
	}
	if s := rt.Kernel().Stats(); s.Subscriptions != 5 || s.SubscriptionsRefused != 2 {
		t.Fatalf("stats after an unsubscribe: %+v", s)
	}
	// A going away gives its slots back.
	rt.Kernel().LinkDown(la)
	waitFor(t, waitTimeout, "A's patterns to go", func() bool { return held()[subA] == 0 })
	if s := rt.Kernel().Stats(); s.Subscriptions != 3 {
		t.Fatalf("%d held after A went, want 3", s.Subscriptions)
	}
	// The publisher stopping gives back the rest.
	stop(t, rt, pub.Addr)
	if s := rt.Kernel().Stats(); s.Subscriptions != 0 {
		t.Fatalf("%d held after the publisher stopped, want 0", s.Subscriptions)
	}
}

// Rule 36: requests a service delayed and has not answered are bounded
// per service and per process; at a bound, a request fails with
// CodeOverloaded (NotRun) before its handler runs, and is counted; an
// answer gives the place back. Services holding no delayed request go
// on serving at the process's bound.
func TestDelayedLimits(t *testing.T) {
	rt := newRuntime(t, service.Config{ProcessID: here, MaxDelayed: 2, MaxDelayedTotal: 3})
	ctx := testCtx(t)
	type delaying struct {
		addr service.Address
		ran  chan struct{}
	}
	startDelaying := func(name string) delaying {
		d := delaying{ran: make(chan struct{}, 10)}
		var waiting []service.Delayed
		d.addr = start(t, rt, name, func(a *service.Agent) error {
			a.Export("wait", func(r *service.Request) {
				d.ran <- struct{}{}
				waiting = append(waiting, r.Delay())
			})
			// Not a request: at its bound, the service refuses every
			// request, the one that would let it answer too.
			a.HandleMessages(service.AllServices, "release", func(service.Message) {
				for _, w := range waiting {
					_ = w.Reply("done")
				}
				waiting = nil
			})
			return nil
		})
		return d
	}
	sender := startProbe(t, rt, "", nil)
	release := func(to service.Address) {
		sender.Do(func(a *service.Agent) {
			if err := a.SendMessage(to, "release", "", nil, 0); err != nil {
				t.Error(err)
			}
		})
	}
	d1, d2 := startDelaying("d1"), startDelaying("d2")
	w1, w2 := callAsync(ctx, rt, d1.addr, "wait"), callAsync(ctx, rt, d1.addr, "wait")
	waitFor(t, waitTimeout, "two delayed", func() bool { return rt.Kernel().Stats().Delayed == 2 })

	// d1 is at its bound.
	_, err := rt.Call(ctx, d1.addr, "wait")
	wantFailure(t, err, service.CodeOverloaded)
	la := newFakeLink("A", procA)
	rt.Kernel().LearnRoute(procA, la)
	rt.Kernel().Deliver(&registry.Envelope{Kind: registry.KindRequest, To: d1.addr, From: service.Address{Process: procA, ID: 5}, Conv: 91,
		Subject: "wait", ContentType: service.ContentCBOR, Data: []byte{0x80}}, la)
	fe := recv(t, la.sent, "the failure")
	if f := decode[service.Failure](t, service.Payload{ContentType: fe.ContentType, Data: fe.Data}); f.Code != service.CodeOverloaded || !fe.NotRun {
		t.Fatalf("failure envelope %+v: %+v; want CodeOverloaded, NotRun", fe, f)
	}
	// The process is at its bound once d2 delays one.
	w3 := callAsync(ctx, rt, d2.addr, "wait")
	waitFor(t, waitTimeout, "three delayed", func() bool { return rt.Kernel().Stats().Delayed == 3 })
	_, err = rt.Call(ctx, d2.addr, "wait")
	wantFailure(t, err, service.CodeOverloaded)
	math := startMath(t, rt)
	if v, err := service.CallFor[int](ctx, rt, math, "multiply", 6, 7); err != nil || v != 42 {
		t.Fatalf("a service that delays nothing, at the process's bound: %v, %v", v, err)
	}
	if n := len(d1.ran) + len(d2.ran); n != 3 {
		t.Fatalf("handlers ran %d times, want 3: the refused requests must not reach them", n)
	}
	s := rt.Kernel().Stats()
	if s.DelayedRefused != 3 || serviceStats(t, rt, d1.addr).Refused != 2 || serviceStats(t, rt, d1.addr).Delayed != 2 {
		t.Fatalf("stats %+v, d1 %+v; want 3 refused, 2 by d1, which holds 2", s, serviceStats(t, rt, d1.addr))
	}

	// Answers give the places back.
	release(d1.addr)
	for _, w := range []<-chan error{w1, w2} {
		if err := recv(t, w, "a delayed answer"); err != nil {
			t.Fatal(err)
		}
	}
	if n := rt.Kernel().Stats().Delayed; n != 1 {
		t.Fatalf("%d delayed after the answers, want 1", n)
	}
	w4 := callAsync(ctx, rt, d1.addr, "wait")
	waitFor(t, waitTimeout, "d1 to delay again", func() bool { return rt.Kernel().Stats().Delayed == 2 })
	// A service stopping gives back what it held; its callers are failed.
	stop(t, rt, d2.addr)
	wantFailure(t, recv(t, w3, "d2's delayed call"), service.CodeWithdrawn)
	release(d1.addr)
	if err := recv(t, w4, "a delayed answer"); err != nil {
		t.Fatal(err)
	}
	if n := rt.Kernel().Stats().Delayed; n != 0 {
		t.Fatalf("%d delayed at the end, want 0", n)
	}
}
