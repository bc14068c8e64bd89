package connection

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
)

const queueWait = 5 * time.Second

// gateWriter is an io.Writer whose writes block until it is opened, as a
// peer that does not read would make them.
type gateWriter struct {
	entered chan struct{} // one value per Write entered
	gate    chan struct{} // closed to let writes through
	once    sync.Once
	mu      sync.Mutex
	out     bytes.Buffer
}

func newGateWriter() *gateWriter {
	return &gateWriter{entered: make(chan struct{}, 1024), gate: make(chan struct{})}
}

func (w *gateWriter) Write(p []byte) (int, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.gate
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(p)
}

func (w *gateWriter) open() { w.once.Do(func() { close(w.gate) }) }

func (w *gateWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.out.Bytes()...)
}

// plugged starts a queue's writer on a gate writer and queues one control
// frame (ping 0) that the writer takes and blocks on, so every frame
// pushed afterwards waits in the queue until the gate opens.
func plugged(t *testing.T, soft, hard int) (*outQueue, *gateWriter, func() []byte) {
	t.Helper()
	// The plug below stays in flight, and bytes in flight count toward
	// the limits (they are memory too): leave room for it.
	plug := len(AppendPing(nil, FramePing, 0))
	q := newOutQueue(soft+plug, hard+plug, DefaultMaxFrame, nil)
	w := newGateWriter()
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.run(w, func(err error) { t.Errorf("writer failed: %v", err) })
	}()
	t.Cleanup(func() {
		q.close(true)
		w.open()
		select {
		case <-done:
		case <-time.After(queueWait):
			t.Errorf("writer did not stop")
		}
	})
	if err := q.push(AppendPing(nil, FramePing, 0), classControl); err != nil {
		t.Fatalf("push plug: %v", err)
	}
	select {
	case <-w.entered:
	case <-time.After(queueWait):
		t.Fatalf("the writer never took the first frame")
	}
	// drain lets the writer write everything, stops it, and returns what
	// it wrote.
	drain := func() []byte {
		t.Helper()
		w.open()
		q.close(true)
		select {
		case <-done:
		case <-time.After(queueWait):
			t.Fatalf("the writer did not finish")
		}
		return w.bytes()
	}
	return q, w, drain
}

// item names a frame: "r5" a report with Seq 5, "q5" a request, "c5" a
// control frame (ping with nonce 5).
func frameItems(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for len(b) > 0 {
		kind, body, n, err := splitFrame(b, DefaultMaxFrame)
		if err != nil || n == 0 {
			t.Fatalf("writer output does not split: n %d, err %v", n, err)
		}
		switch kind {
		case FrameEnvelope:
			e, err := DecodeEnvelope(body, nil)
			if err != nil {
				t.Fatalf("decode written envelope: %v", err)
			}
			prefix := "r"
			if e.Kind == registry.KindRequest {
				prefix = "q"
			}
			out = append(out, fmt.Sprintf("%s%d", prefix, e.Seq))
		case FramePing:
			nonce, _ := binary.Uvarint(body)
			out = append(out, fmt.Sprintf("c%d", nonce))
		default:
			t.Fatalf("unexpected %v frame in the output", kind)
		}
		b = b[n:]
	}
	return out
}

func envelope(kind registry.Kind, seq uint64, size int) *registry.Envelope {
	return &registry.Envelope{Kind: kind, To: registry.Address{Process: 1, ID: 1}, From: registry.Address{Process: 2, ID: 1},
		Seq: seq, Subject: "s", Data: make([]byte, size)}
}

// reportQueued tells whether pushing a report queued it (possibly by
// dropping older ones).
func reportQueued(err error) bool { return err == nil || errors.Is(err, errDroppedOlder) }

func report(seq uint64) *registry.Envelope  { return envelope(registry.KindReport, seq, 100) }
func request(seq uint64) *registry.Envelope { return envelope(registry.KindRequest, seq, 100) }

// control is a control frame: a ping whose nonce names it.
func control(seq uint64) []byte { return AppendPing(nil, FramePing, seq) }

func TestOutQueueDropsOldestReports(t *testing.T) {
	size := EnvelopeSize(report(0))
	q, _, drain := plugged(t, 10*size, 100*size)
	for i := uint64(1); i <= 25; i++ {
		err := q.pushEnvelope(report(i))
		if !reportQueued(err) {
			t.Fatalf("report %d refused: %v", i, err)
		}
		if (i > 10) != errors.Is(err, errDroppedOlder) {
			t.Fatalf("report %d: err = %v; the queue must say when it dropped older reports, and only then", i, err)
		}
		q.mu.Lock()
		live := q.live
		q.mu.Unlock()
		if live > 10*size {
			t.Fatalf("after report %d, %d bytes waiting: over the soft limit of %d", i, live, 10*size)
		}
	}
	if got := q.reportsDropped.Load(); got != 15 {
		t.Fatalf("reports dropped = %d, want 15", got)
	}
	got := frameItems(t, drain())
	want := []string{"c0"}
	for i := 16; i <= 25; i++ {
		want = append(want, fmt.Sprintf("r%d", i))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("written:\n got %v\nwant %v (the oldest reports dropped)", got, want)
	}
	if out := q.framesOut.Load(); out != uint64(len(want)) {
		t.Fatalf("framesOut = %d, want %d (dropped frames are not counted as sent)", out, len(want))
	}
}

func TestOutQueueLimits(t *testing.T) {
	size := EnvelopeSize(request(0))
	cs := len(control(1))
	soft := 5 * size
	hard := soft + 3*cs
	q, w, drain := plugged(t, soft, hard)
	for i := uint64(1); i <= 5; i++ {
		if err := q.pushEnvelope(request(i)); err != nil {
			t.Fatalf("request %d under the soft limit refused: %v", i, err)
		}
	}
	// Past the soft limit: requests are refused, counted, and not queued.
	for i := uint64(6); i <= 7; i++ {
		if err := q.pushEnvelope(request(i)); !errors.Is(err, errOverloaded) {
			t.Fatalf("request %d over the soft limit: err = %v, want overloaded", i, err)
		}
	}
	if got := q.requestsRefused.Load(); got != 2 {
		t.Fatalf("requests refused = %d, want 2", got)
	}
	// A report with no older report to drop is dropped itself.
	if err := q.pushEnvelope(report(8)); !errors.Is(err, errOverloaded) {
		t.Fatalf("report over the soft limit with nothing to drop: err = %v, want overloaded", err)
	}
	if got := q.reportsDropped.Load(); got != 1 {
		t.Fatalf("reports dropped = %d, want 1", got)
	}
	// Control frames are kept past the soft limit, up to the hard one.
	for i := uint64(9); i <= 11; i++ {
		if err := q.push(control(i), classControl); err != nil {
			t.Fatalf("control frame %d under the hard limit refused: %v", i, err)
		}
	}
	if err := q.push(control(12), classControl); !errors.Is(err, errHardLimit) {
		t.Fatalf("control frame over the hard limit: err = %v, want the hard-limit error", err)
	}
	// Once the peer reads again, the queue takes requests again.
	w.open()
	pollUntil(t, "the queue to drain", func() bool { return q.queuedBytes() == 0 })
	if err := q.pushEnvelope(request(13)); err != nil {
		t.Fatalf("request after draining: %v", err)
	}
	got := frameItems(t, drain())
	want := []string{"c0", "q1", "q2", "q3", "q4", "q5", "c9", "c10", "c11", "q13"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("written:\n got %v\nwant %v", got, want)
	}
}

// pollUntil polls cond until it holds, failing the test after queueWait.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(queueWait)
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

func TestOutQueueCompactionKeepsOrder(t *testing.T) {
	const reportData = 1000
	size := EnvelopeSize(envelope(registry.KindReport, 0, reportData))
	soft := 100 * size
	q, _, drain := plugged(t, soft, 10*soft)
	var pushed []string
	pushedBytes := 0
	for i := uint64(1); i <= 600; i++ {
		if err := q.pushEnvelope(envelope(registry.KindReport, i, reportData)); !reportQueued(err) {
			t.Fatalf("report %d: %v", i, err)
		}
		pushed = append(pushed, fmt.Sprintf("r%d", i))
		pushedBytes += size
		if i%10 == 0 {
			c := control(i)
			if err := q.push(c, classControl); err != nil {
				t.Fatalf("control %d: %v", i, err)
			}
			pushed = append(pushed, fmt.Sprintf("c%d", i))
			pushedBytes += len(c)
		}
	}
	q.mu.Lock()
	buffered := len(q.buf)
	q.mu.Unlock()
	// Without compaction every byte pushed since the plug would still be
	// in the buffer.
	if buffered >= pushedBytes/2 {
		t.Fatalf("%d of %d pushed bytes still buffered: dropped reports were never compacted away", buffered, pushedBytes)
	}
	dropped := q.reportsDropped.Load()
	if dropped == 0 {
		t.Fatalf("no report dropped")
	}
	// Oldest first: exactly the first `dropped` reports are gone.
	var want []string
	for _, s := range pushed {
		var n uint64
		if s[0] == 'r' {
			fmt.Sscanf(s[1:], "%d", &n)
			if n <= dropped {
				continue
			}
		}
		want = append(want, s)
	}
	want = append([]string{"c0"}, want...)
	got := frameItems(t, drain())
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("written after compaction (%d reports dropped):\n got %v\nwant %v", dropped, got, want)
	}
}

// TestSendFailures checks the failures a link's Send turns queue errors
// into: what the registry hands back to callers.
func TestSendFailures(t *testing.T) {
	rt, err := registry.New(registry.Config{Node: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), queueWait)
		defer cancel()
		rt.Close(ctx)
	})
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	size := EnvelopeSize(request(0))
	// The actor is not started: nothing drains the queue.
	c := New(rt, a, Params{ID: "link-test", Config: Config{QueueSoft: 2 * size, QueueHard: 4 * size, MaxFrame: 4 * size}})
	for i := uint64(0); i < 2; i++ {
		if err := c.Send(request(i)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	var f *registry.Failure
	if err := c.Send(request(2)); !errors.As(err, &f) || f.Code != registry.CodeOverloaded {
		t.Fatalf("request over the soft limit: %v, want CodeOverloaded", err)
	}
	if err := c.Send(envelope(registry.KindReport, 3, 4*size)); !errors.As(err, &f) || f.Code != registry.CodePayloadTooLarge {
		t.Fatalf("envelope over the frame limit: %v, want CodePayloadTooLarge", err)
	}
	if s := c.Stats(); s.RequestsRefused != 1 || s.Queued != int64(2*size) {
		t.Fatalf("stats %+v, want 1 refused and %d bytes queued", s, 2*size)
	}
	c.q.close(false)
	if err := c.Send(request(4)); !errors.As(err, &f) || f.Code != registry.CodeLinkLost {
		t.Fatalf("request on a closed link: %v, want CodeLinkLost", err)
	}
	if err := c.SendFrame(control(5)); !errors.As(err, &f) || f.Code != registry.CodeLinkLost {
		t.Fatalf("frame on a closed link: %v, want CodeLinkLost", err)
	}
}

// TestOutQueueRefusesRequestsWhileDropping: once reports are being
// dropped for a peer that does not read, even a request small enough to
// fit the room a dropped report left is refused, rather than waiting
// behind the backlog until its deadline; when the peer reads again, the
// queue takes requests again.
func TestOutQueueRefusesRequestsWhileDropping(t *testing.T) {
	size := EnvelopeSize(report(0))
	q, w, _ := plugged(t, 3*size, 30*size)
	for i := uint64(1); i <= 4; i++ {
		if err := q.pushEnvelope(report(i)); !reportQueued(err) {
			t.Fatalf("report %d: %v", i, err)
		}
	}
	if q.reportsDropped.Load() == 0 {
		t.Fatal("no report dropped: the test needs the queue to be dropping")
	}
	small := envelope(registry.KindRequest, 5, 1)
	if EnvelopeSize(small) >= size {
		t.Fatal("the request must be smaller than a report")
	}
	if err := q.pushEnvelope(small); !errors.Is(err, errOverloaded) {
		t.Fatalf("small request while dropping: err = %v, want overloaded", err)
	}
	w.open()
	pollUntil(t, "the queue to drain", func() bool { return q.queuedBytes() == 0 })
	if err := q.pushEnvelope(small); err != nil {
		t.Fatalf("small request after the peer read again: %v", err)
	}
}

// TestOutQueueAwaitRoom checks the relays' backpressure: a full queue
// whose writer is draining it holds a relay back until the writer frees
// room; a full queue whose writer is stuck does not; and the wait ends at
// the reader's deadline.
func TestOutQueueAwaitRoom(t *testing.T) {
	size := EnvelopeSize(report(0))
	fill := func(t *testing.T, q *outQueue) {
		t.Helper()
		for i := uint64(1); i <= 10; i++ {
			if err := q.pushEnvelope(report(i)); err != nil {
				t.Fatalf("report %d: %v", i, err)
			}
		}
	}
	waiting := func(q *outQueue) bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.roomWait != nil
	}
	// fresh marks the writer's current write as just begun: draining,
	// as far as anyone can tell.
	fresh := func(q *outQueue) {
		q.mu.Lock()
		q.writeStart = nanotime()
		q.mu.Unlock()
	}
	type result struct {
		ok   bool
		took time.Duration
	}
	await := func(q *outQueue, deadline *int64) chan result {
		done := make(chan result, 1)
		go func() {
			start := time.Now()
			ok := q.awaitRoom(size, deadline)
			done <- result{ok, time.Since(start)}
		}()
		return done
	}
	stretch := func(t *testing.T) {
		// Long enough that only the writer can end the wait.
		rw, sa := relayWait, stallAfter
		relayWait, stallAfter = time.Hour, time.Hour
		t.Cleanup(func() { relayWait, stallAfter = rw, sa })
	}

	t.Run("draining", func(t *testing.T) {
		stretch(t)
		q, w, drain := plugged(t, 10*size, 100*size)
		fill(t, q)
		fresh(q)
		var deadline int64
		done := await(q, &deadline)
		waitUntil := time.Now().Add(queueWait)
		for !waiting(q) {
			select {
			case r := <-done:
				t.Fatalf("awaitRoom returned (%v) at once on a full queue that is draining", r.ok)
			default:
			}
			if time.Now().After(waitUntil) {
				t.Fatal("awaitRoom never waited")
			}
			time.Sleep(time.Millisecond)
		}
		select {
		case r := <-done:
			t.Fatalf("awaitRoom returned (%v) while the queue was still full", r.ok)
		default:
		}
		w.open() // the writer moves on: room is freed
		select {
		case r := <-done:
			if !r.ok {
				t.Fatal("awaitRoom says its deadline passed; it was an hour away")
			}
		case <-time.After(queueWait):
			t.Fatal("awaitRoom still waiting after the queue drained")
		}
		if got := len(frameItems(t, drain())); got != 11 {
			t.Fatalf("%d frames written, want 11", got)
		}
	})

	t.Run("stuck", func(t *testing.T) {
		stretch(t)
		q, _, _ := plugged(t, 10*size, 100*size)
		fill(t, q)
		q.mu.Lock()
		q.writeStart = nanotime() - int64(2*time.Hour) // the plug's write has hung for a while
		q.mu.Unlock()
		var deadline int64
		select {
		case r := <-await(q, &deadline):
			if !r.ok {
				t.Fatal("awaitRoom reports a deadline on a queue it must not wait on")
			}
		case <-time.After(queueWait):
			t.Fatal("awaitRoom waited on a queue whose writer is stuck")
		}
		if waiting(q) {
			t.Fatal("awaitRoom registered a wait on a queue whose writer is stuck")
		}
	})

	t.Run("deadline", func(t *testing.T) {
		sa := stallAfter
		stallAfter = time.Hour // the writer seems to drain throughout
		t.Cleanup(func() { stallAfter = sa })
		q, _, _ := plugged(t, 10*size, 100*size)
		fill(t, q)
		fresh(q)
		var deadline int64
		r := recvResult(t, await(q, &deadline))
		if r.ok {
			t.Fatal("awaitRoom says there is room in a queue that never drained")
		}
		if r.took < relayWait/2 {
			t.Fatalf("awaitRoom gave up after %v, before relayWait (%v)", r.took, relayWait)
		}
		// The deadline is the read's: a second wait in the same read
		// gives up at once.
		r = recvResult(t, await(q, &deadline))
		if r.ok || r.took >= relayWait {
			t.Fatalf("a wait past the read's deadline: ok %v after %v", r.ok, r.took)
		}
	})
}

func recvResult[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(queueWait):
		t.Fatal("awaitRoom did not give up on a queue that never drains")
	}
	var zero T
	return zero
}
