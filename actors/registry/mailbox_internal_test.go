package registry

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Tests of the service mailbox from inside the package: its ring, its
// byte bound (the peak it reached) and protoactor's semantics with a
// real actor system.

const mbWait = 5 * time.Second

func newMailboxRuntime(t *testing.T, cfg Config) *Kernel {
	t.Helper()
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rt
}

// testService is a bare service actor on the kernel, without package
// service: handle runs for each envelope it gets (requests are answered
// with an empty response when handle returns), and a *panicNow message
// panics out of the actor.
type testService struct {
	k      *Kernel
	l      *Local
	handle func(e *Envelope)
}

type panicNow struct{}

func (s *testService) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.l.Started(ctx.Self())
		s.k.Register(s.l, make(chan error, 1))
	case *actor.Stopping:
		done := make(chan struct{})
		s.k.Withdraw(s.l, done)
		<-done
	case *actor.Stopped:
		s.l.Stopped()
	case *panicNow:
		panic("a bug in the service actor")
	case *Envelope:
		s.serve(m)
	}
}

func (s *testService) serve(e *Envelope) {
	s.handle(e)
	if e.Kind == KindRequest {
		s.k.Route(&Envelope{Kind: KindResponse, To: e.From, From: e.To, Conv: e.Conv, ContentType: ContentCBOR, Data: []byte{0xf6}})
	}
}

// startMailboxService starts a testService named name and waits until
// the registry lists it.
func startMailboxService(t *testing.T, rt *Kernel, name string, handle func(e *Envelope)) *Local {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mbWait)
	defer cancel()
	l := rt.NewLocal(name, "*", nil, false)
	s := &testService{k: rt, l: l, handle: handle}
	if _, err := rt.SpawnService(ctx, nil, l, func() actor.Actor { return s }); err != nil {
		t.Fatal(err)
	}
	until(t, name+" listed", func() bool { _, ok := rt.LookupAddress(l.addr); return ok })
	return l
}

// until polls cond every millisecond, failing the test after mbWait.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(mbWait)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func take[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(mbWait):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// noDispatch lets a test drive the mailbox by hand: nothing runs.
type noDispatch struct{}

func (noDispatch) Schedule(func()) {}
func (noDispatch) Throughput() int { return 300 }

func bareMailbox(limit int) *serviceMailbox {
	rt := &Kernel{cfg: Config{ServiceQueueLimit: limit}}
	m := newServiceMailbox(rt, &Local{})
	m.RegisterHandlers(nil, noDispatch{})
	return m
}

// The ring: droppable messages go oldest first, wherever they sit
// between messages that may not be dropped; order is kept; a flood
// behind a message that never leaves neither grows the ring nor the
// bytes past the limit.
func TestServiceMailboxRingDropsOldestDroppable(t *testing.T) {
	m := bareMailbox(100)
	type msg struct{ id string }
	ids := func() []string {
		var out []string
		for {
			x := m.pop()
			if x == nil {
				return out
			}
			out = append(out, x.(*msg).id)
		}
	}
	m.offer(&msg{"req1"}, 30, classLimited)
	m.offer(&msg{"rep1"}, 20, classDroppable)
	m.offer(&msg{"timer"}, 0, classFree)
	m.offer(&msg{"rep2"}, 20, classDroppable)
	m.offer(&msg{"req2"}, 20, classLimited) // 90 bytes now
	if _, ok := m.offer(&msg{"req3"}, 20, classLimited); ok {
		t.Fatal("a request over the limit was queued")
	}
	m.offer(&msg{"rep3"}, 35, classDroppable) // 125 bytes: drops rep1 (105), then rep2 (85)
	if got := m.ref.dropped.Load(); got != 2 {
		t.Fatalf("dropped %d, want 2", got)
	}
	m.offer(&msg{"huge"}, 60, classDroppable) // would not fit even without rep3: dropped itself
	if got, q := m.ref.dropped.Load(), m.queuedBytes(); got != 3 || q != 85 {
		t.Fatalf("after a report too big to fit: dropped %d, queued %d; want 3, 85", got, q)
	}
	if n := m.UserMessageCount(); n != 4 {
		t.Fatalf("UserMessageCount = %d, want 4", n)
	}
	if got := strings.Join(ids(), " "); got != "req1 timer req2 rep3" {
		t.Fatalf("popped %q", got)
	}
	if q, n := m.queuedBytes(), m.UserMessageCount(); q != 0 || n != 0 {
		t.Fatalf("after draining: queued %d, count %d", q, n)
	}

	// A flood behind a request that stays at the head.
	m = bareMailbox(1000)
	m.offer(&msg{"stuck"}, 10, classLimited)
	const flood = 100_000
	for i := 0; i < flood; i++ {
		m.offer(&msg{"r"}, 100, classDroppable)
		if q := m.queuedBytes(); q > 1000 {
			t.Fatalf("queued %d bytes, over the limit", q)
		}
	}
	if len(m.buf) > 64 {
		t.Fatalf("the ring grew to %d slots for at most 10 messages", len(m.buf))
	}
	if d := m.ref.dropped.Load(); d != flood-9 {
		t.Fatalf("dropped %d, want %d", d, flood-9)
	}
	if got := ids(); len(got) != 10 || got[0] != "stuck" {
		t.Fatalf("popped %v", got)
	}
}

// Rule 25: a subscriber blocked in a handler while reports flood in
// gets, once it recovers, the newest reports in order, ending with the
// last one sent; the rest are counted as dropped, and what waits never
// goes past the limit by more than an envelope.
func TestServiceQueueDropsOldestReports(t *testing.T) {
	const limit = 4 << 10
	const n = 2000
	rt := newMailboxRuntime(t, Config{ServiceQueueLimit: limit})
	gate, blocked, last := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	var mu sync.Mutex
	var got []int
	sub := startMailboxService(t, rt, "sub", func(e *Envelope) {
		if e.Kind != KindReport {
			return
		}
		var i int
		if err := (Payload{ContentType: e.ContentType, Data: e.Data}).Decode(&i); err != nil {
			t.Errorf("decode: %v", err)
		}
		mu.Lock()
		got = append(got, i)
		mu.Unlock()
		switch i {
		case 0:
			close(blocked)
			<-gate
		case n:
			close(last)
		}
	})
	t.Cleanup(release)
	from := Address{Process: rt.ProcessID(), ID: 999}
	report := func(i int) {
		p, err := Encode(i)
		if err != nil {
			t.Fatal(err)
		}
		rt.Route(&Envelope{Kind: KindReport, To: sub.addr, From: from, Subject: "n", Pattern: "n", ContentType: p.ContentType, Data: p.Data})
	}
	report(0)
	take(t, blocked, "the subscriber to block")
	// Route posts synchronously: when it returns, the report is queued
	// or dropped.
	for i := 1; i <= n; i++ {
		report(i)
	}
	if q := sub.mb.queuedBytes(); q > limit {
		t.Fatalf("%d bytes wait for the subscriber, over the limit of %d", q, limit)
	}
	if d := sub.dropped.Load(); d == 0 {
		t.Fatal("nothing dropped")
	}
	release()
	take(t, last, "the last report")
	// Everything sent before "last" was handled: the queue is empty.
	until(t, "the queue to drain", func() bool { return sub.mb.queuedBytes() == 0 })

	mu.Lock()
	defer mu.Unlock()
	if got[0] != 0 || got[len(got)-1] != n {
		t.Fatalf("received %d reports from %d to %d, want 0 then ending at %d", len(got), got[0], got[len(got)-1], n)
	}
	for i := 2; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("reports out of order or with a gap: ... %d, %d ...", got[i-1], got[i])
		}
	}
	if len(got) < 10 {
		t.Fatalf("only %d reports kept with room for %d bytes", len(got), limit)
	}
	dropped := sub.dropped.Load()
	if want := uint64(n + 1 - len(got)); dropped != want {
		t.Fatalf("dropped %d, want sent − received = %d", dropped, want)
	}
	if s := rt.Stats(); s.ServiceDrops != dropped {
		t.Fatalf("Stats().ServiceDrops = %d, want %d", s.ServiceDrops, dropped)
	}
	sample := Envelope{Kind: KindReport, Subject: "n", Pattern: "n", ContentType: ContentCBOR, Data: make([]byte, 9)}
	if peak := sub.mb.peakQueued(); peak > limit+int64(sample.Size()) || peak < limit/2 {
		t.Fatalf("at most %d bytes waited; want between %d and the limit plus an envelope, %d", peak, limit/2, limit+sample.Size())
	}
}

// protoactor's semantics: a Stop posted while user messages wait is
// handled as soon as the running handler returns, before them (they are
// never handled: the actor has stopped).
func TestServiceMailboxStopGoesFirst(t *testing.T) {
	rt := newMailboxRuntime(t, Config{})
	gate, blocked := make(chan struct{}), make(chan struct{}, 1)
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	var mu sync.Mutex
	ran := 0
	ref := startMailboxService(t, rt, "svc", func(e *Envelope) {
		if e.Kind != KindRequest {
			return
		}
		mu.Lock()
		ran++
		mu.Unlock()
		select {
		case blocked <- struct{}{}:
			<-gate
		default:
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), mbWait)
	defer cancel()
	calls := make(chan error, 11)
	for i := 0; i < 11; i++ {
		go func() {
			_, err := rt.CallFrom(ctx, Address{Process: rt.ProcessID()}, ref.addr, "work", nil)
			calls <- err
		}()
		if i == 0 {
			take(t, blocked, "the first call to block")
		}
	}
	until(t, "ten calls to queue", func() bool { return ref.mb.UserMessageCount() == 10 })
	stopped := make(chan error, 1)
	go func() { stopped <- rt.StopService(ctx, ref.addr) }()
	until(t, "the Stop to be posted", func() bool { return ref.mb.sysMessages.Load() > 0 })
	release()
	if err := take(t, stopped, "StopService"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 11; i++ {
		take(t, calls, "the calls to end")
	}
	mu.Lock()
	defer mu.Unlock()
	if ran != 1 {
		t.Fatalf("the handler ran %d times; the queued calls should have met the Stop first", ran)
	}
}

// protoactor's semantics: a panic that escapes the service actor (a
// runtime bug, since handlers are guarded) suspends the mailbox and
// reaches the supervisor, which resumes it; the service goes on.
func TestServiceMailboxEscalatesPanic(t *testing.T) {
	var mu sync.Mutex
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	rt := newMailboxRuntime(t, Config{Logger: log})
	ref := startMailboxService(t, rt, "svc", func(*Envelope) {})
	rt.sys.Root.Send(ref.pid, &panicNow{})
	until(t, "the supervisor's log", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "actor failed; resuming it")
	})
	ctx, cancel := context.WithTimeout(context.Background(), mbWait)
	defer cancel()
	if _, err := rt.CallFrom(ctx, Address{Process: rt.ProcessID()}, ref.addr, "ping", nil); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
	if ref.mb.suspended.Load() {
		t.Fatal("the mailbox stayed suspended")
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Posting and taking a message allocate nothing once the ring has room.
func TestServiceMailboxAllocationFree(t *testing.T) {
	m := bareMailbox(1 << 20)
	e := &Envelope{Kind: KindReport, Subject: "s", Data: make([]byte, 100)}
	m.offer(e, 164, classDroppable)
	m.pop()
	allocs := testing.AllocsPerRun(1000, func() {
		m.offer(e, int64(e.Size()), classDroppable)
		m.begin()
		m.pop()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per message", allocs)
	}
	// Dropping to make room allocates nothing either.
	m = bareMailbox(1000)
	for i := 0; i < 20; i++ {
		m.offer(e, int64(e.Size()), classDroppable)
	}
	if allocs := testing.AllocsPerRun(1000, func() { m.offer(e, int64(e.Size()), classDroppable) }); allocs != 0 {
		t.Fatalf("%v allocations per message dropped", allocs)
	}
}

var _ actor.Dispatcher = noDispatch{}
