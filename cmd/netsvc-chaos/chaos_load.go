package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/service"
)

// The load of a chaos run: the calls, their book, and a monitor of this
// process's own stalls.

// stream calls node j's math from client i at the configured rate until
// stop is closed. Each call runs on its own, so a slow one does not hold
// the next back.
func (r *chaosRun) stream(i, j int, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(r.cfg.seed, uint64(i)<<8|uint64(j)))
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.rate))
	defer tick.Stop()
	c, target := r.clients[i], r.nodes[j].name
	last, _ := mathOf(c, target)
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		// The address of node j's math as client i sees it now; while it
		// sees none (node j or i is down), the last one it saw, so the
		// call fails as a user's would.
		if a, ok := mathOf(c, target); ok {
			last = a
		}
		m := randomCall(rng)
		rec := r.calls.begin(i, j, m.method)
		var to service.Target = last
		if r.cfg.rolling {
			to = service.Name(demoMath) // any replica: a draining one hands its calls on
		}
		go r.call(c, to, m, rec)
	}
}

// mathOf returns the address of the math service of node name as c sees it.
func mathOf(c *node.Node, name string) (service.Address, bool) {
	for _, b := range c.Runtime().Lookup(demoMath) {
		if b.Node == name {
			return b.Address, true
		}
	}
	return service.Address{}, false
}

// chaosCall is one call and how to check its answer.
type chaosCall struct {
	method string
	args   []any
	check  func(service.Payload) error
}

func randomCall(rng *rand.Rand) chaosCall {
	switch k := rng.IntN(20); {
	case k < 9:
		s := fmt.Sprintf("echo-%d", rng.Uint32())
		return chaosCall{"echo", []any{s}, func(p service.Payload) error {
			var got string
			if err := p.Decode(&got); err != nil || got != s {
				return fmt.Errorf("echo(%q) = %q, %v", s, got, err)
			}
			return nil
		}}
	case k < 16:
		x, y := rng.Int64N(2001)-1000, rng.Int64N(2001)-1000
		return chaosCall{"multiply", []any{x, y}, func(p service.Payload) error {
			var got int64
			if err := p.Decode(&got); err != nil || got != x*y {
				return fmt.Errorf("multiply(%d, %d) = %d, %v", x, y, got, err)
			}
			return nil
		}}
	default:
		ms := rng.IntN(151)
		return chaosCall{"sleep", []any{ms}, func(p service.Payload) error {
			var got int
			if err := p.Decode(&got); err != nil || got != ms {
				return fmt.Errorf("sleep(%d) = %d, %v", ms, got, err)
			}
			return nil
		}}
	}
}

func (r *chaosRun) call(c *node.Node, to service.Target, m chaosCall, rec *callRecord) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.deadline)
	res, err := c.Runtime().Call(ctx, to, m.method, m.args...)
	cancel()
	if err == nil {
		err = m.check(res)
		if err != nil {
			err = &wrongAnswer{err}
		}
	}
	r.calls.end(rec, err, r.cfg.deadline+r.cfg.grace)
}

// wrongAnswer is an answer that is not what the method returns.
type wrongAnswer struct{ error }

// callRecord is one call of the load.
type callRecord struct {
	id             uint64
	client, target int
	method         string
	start, end     time.Time
	code           service.Code // 0: answered
	details        string
}

// callBook keeps the count of the calls and the ones in flight.
type callBook struct {
	mu       sync.Mutex
	nextID   uint64
	inflight map[uint64]*callRecord
	idle     chan struct{} // closed when nothing is in flight, while waited for
	sent     uint64
	answered uint64
	failed   map[service.Code]uint64
	wrong    []string
	hung     []*callRecord
	late     int // calls past deadline + grace only by the time this process stalled
	timeouts []*callRecord
	maxDur   time.Duration
	stalls   *stallMonitor
}

func newCallBook(stalls *stallMonitor) *callBook {
	return &callBook{inflight: map[uint64]*callRecord{}, failed: map[service.Code]uint64{}, stalls: stalls}
}

func (b *callBook) begin(client, target int, method string) *callRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextID++
	b.sent++
	rec := &callRecord{id: b.nextID, client: client, target: target, method: method, start: time.Now()}
	b.inflight[rec.id] = rec
	return rec
}

func (b *callBook) end(rec *callRecord, err error, limit time.Duration) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.inflight, rec.id)
	rec.end = now
	d := now.Sub(rec.start)
	b.maxDur = max(b.maxDur, d)
	var wrong *wrongAnswer
	var f *service.Failure
	switch {
	case err == nil:
		b.answered++
	case errors.As(err, &wrong):
		b.wrong = append(b.wrong, wrong.Error())
	case errors.As(err, &f):
		rec.code, rec.details = f.Code, f.Details
		b.failed[f.Code]++
		if f.Code == service.CodeTimedOut {
			b.timeouts = append(b.timeouts, rec)
		}
	default:
		rec.code, rec.details = -1, err.Error()
		b.failed[-1]++
	}
	if d > limit {
		// A call may end late because this process did not run (an
		// overloaded machine): its deadline's timer fired late. Only
		// the time beyond that counts.
		if d-b.stalls.during(rec.start, now) > limit {
			b.hung = append(b.hung, rec)
		} else {
			b.late++
		}
	}
	if len(b.inflight) == 0 && b.idle != nil {
		close(b.idle)
		b.idle = nil
	}
}

// wait waits up to d for the calls in flight to end and returns how
// many did not.
func (b *callBook) wait(d time.Duration) int {
	b.mu.Lock()
	if len(b.inflight) == 0 {
		b.mu.Unlock()
		return 0
	}
	idle := make(chan struct{})
	b.idle = idle
	b.mu.Unlock()
	select {
	case <-idle:
		return 0
	case <-time.After(d):
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.idle = nil
	return len(b.inflight)
}

// stallMonitor notices when this process does not run for a while, as
// on an overloaded machine: the ticks of a fast ticker come late.
type stallMonitor struct {
	mu     sync.Mutex
	stalls []stall
	quit   chan struct{}
	done   chan struct{}
}

type stall struct{ from, to time.Time }

const (
	stallTick = 10 * time.Millisecond
	stallMin  = 50 * time.Millisecond // a tick later than this is a stall
)

func startStallMonitor() *stallMonitor {
	m := &stallMonitor{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(stallTick)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-m.quit:
				return
			case <-tick.C:
				now := time.Now() // when this goroutine runs, not when the tick was due
				if gap := now.Sub(last); gap > stallTick+stallMin {
					m.mu.Lock()
					m.stalls = append(m.stalls, stall{last.Add(stallTick), now})
					m.mu.Unlock()
				}
				last = now
			}
		}
	}()
	return m
}

func (m *stallMonitor) stop() {
	close(m.quit)
	<-m.done
}

// during returns how long the process stalled between from and to.
func (m *stallMonitor) during(from, to time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var d time.Duration
	for _, s := range m.stalls {
		if a, b := maxTime(s.from, from), minTime(s.to, to); b.After(a) {
			d += b.Sub(a)
		}
	}
	return d
}

// longest returns the longest stall.
func (m *stallMonitor) longest() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var d time.Duration
	for _, s := range m.stalls {
		d = max(d, s.to.Sub(s.from))
	}
	return d
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
