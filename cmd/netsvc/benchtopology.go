package main

// The topology of "netsvc bench", that of the peer benchmarks in
// cmd/peerbench: a caller or publisher in a client process linked to
// server B, the service or subscriber in a client process linked to
// server A, A and B linked — three TCP hops each way, all in one process.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/service"
)

// benchOptions select a run.
type benchOptions struct {
	Mode     string        // rr, rrpar or pub
	Duration time.Duration // measuring time
	Size     int           // payload bytes (100)
	InFlight int           // requests in flight for rrpar (64)
	// Servers, when set, are a running cluster to load instead of the
	// four processes of the peer topology: the caller links to the first,
	// the service to the last (with one server both to it).
	Servers []string
	Tokens  []string
}

// name is the name of a benchmark service: with its own topology the
// peer benchmark's; in a running cluster unique to this process, so
// benchmarks and users' services never meet.
func (o benchOptions) name(base string) string {
	if len(o.Servers) == 0 {
		return base
	}
	return fmt.Sprintf("bench-%s-%d", base, os.Getpid())
}

// benchResult has the keys of the peer benchmark's JSON.
type benchResult struct {
	Peer         string  `json:"peer"`
	Mode         string  `json:"mode"`
	Payload      int     `json:"payload"`
	Seconds      float64 `json:"seconds"`
	InFlight     int     `json:"inflight,omitempty"`
	RequestsPerS float64 `json:"requests_per_s,omitempty"`
	P50us        int64   `json:"p50_us,omitempty"`
	P99us        int64   `json:"p99_us,omitempty"`
	P999us       int64   `json:"p999_us,omitempty"`
	ReceivedPerS float64 `json:"received_per_s,omitempty"`
	Sent         int64   `json:"sent,omitempty"`
	Received     int64   `json:"received,omitempty"`
	Dropped      uint64  `json:"dropped,omitempty"`
}

// benchTopology is the four processes of a run.
type benchTopology struct {
	A, B, Service, Caller *node.Node
}

// startBenchTopology starts servers A and B (B dials A), a client process of
// A that will host the service or subscriber, and a client process of B
// for the caller or publisher.
func startBenchTopology(ctx context.Context, o benchOptions) (*benchTopology, error) {
	t := &benchTopology{}
	var err error
	if len(o.Servers) > 0 {
		// Two client processes of a running cluster.
		if t.Service, err = node.Connect(ctx, node.Config{Name: "bench-service", Servers: o.Servers[len(o.Servers)-1:], Tokens: o.Tokens}); err != nil {
			return nil, err
		}
		if t.Caller, err = node.Connect(ctx, node.Config{Name: "bench-caller", Servers: o.Servers[:1], Tokens: o.Tokens}); err != nil {
			t.Stop()
			return nil, err
		}
		return t, nil
	}
	if t.A, err = node.Start(ctx, node.Config{Name: "A", Exchanges: []exchange.Config{node.Server("", "127.0.0.1:0")}}); err != nil {
		return nil, err
	}
	if t.B, err = node.Start(ctx, node.Config{Name: "B", Exchanges: []exchange.Config{node.Server("", "127.0.0.1:0", t.A.Addr())}}); err != nil {
		t.Stop()
		return nil, err
	}
	if t.Service, err = node.Start(ctx, node.Config{Name: "service", Exchanges: []exchange.Config{node.Client("", t.A.Addr())}}); err != nil {
		t.Stop()
		return nil, err
	}
	if t.Caller, err = node.Start(ctx, node.Config{Name: "caller", Exchanges: []exchange.Config{node.Client("", t.B.Addr())}}); err != nil {
		t.Stop()
		return nil, err
	}
	return t, nil
}

// benchWaitVisible waits until rt sees a service of that name.
func benchWaitVisible(rt *service.Runtime, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for len(rt.Lookup(name)) == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s did not become visible within %v", name, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// Stop stops the four processes.
func (t *benchTopology) Stop() {
	ctx := context.Background()
	for _, n := range []*node.Node{t.Caller, t.Service, t.B, t.A} {
		if n != nil {
			n.Stop(ctx)
		}
	}
}

// Dropped sums the reports the topology dropped: at every link and at
// every service's queue.
func (t *benchTopology) Dropped() uint64 {
	var d uint64
	for _, n := range []*node.Node{t.Caller, t.Service, t.B, t.A} {
		if n == nil {
			continue
		}
		for _, l := range n.Links() {
			d += l.Dropped
		}
		d += n.Kernel().Stats().ServiceDrops
	}
	return d
}

// benchRun runs one benchmark.
func benchRun(ctx context.Context, o benchOptions) (benchResult, error) {
	if o.Size <= 0 {
		o.Size = 100
	}
	if o.InFlight <= 0 {
		o.InFlight = 64
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	r := benchResult{Peer: "netsvc", Mode: o.Mode, Payload: o.Size, Seconds: o.Duration.Seconds()}
	if len(o.Servers) > 0 {
		r.Peer = "netsvc cluster at " + strings.Join(o.Servers, ",")
	}
	switch o.Mode {
	case "rr", "rrpar":
		n := 1
		if o.Mode == "rrpar" {
			n = o.InFlight
			r.InFlight = n
		}
		return r, benchRequests(ctx, o, n, &r)
	case "pub":
		return r, benchPublish(ctx, o, &r)
	}
	return r, fmt.Errorf("bench: unknown mode %q (rr, rrpar, pub)", o.Mode)
}

func benchEcho() service.Service {
	return service.SetupFunc(func(a *service.Agent) error {
		a.Export("echo", func(b []byte) []byte { return b })
		return nil
	})
}

func benchRequests(ctx context.Context, o benchOptions, n int, r *benchResult) error {
	t, err := startBenchTopology(ctx, o)
	if err != nil {
		return err
	}
	defer t.Stop()
	echo := o.name("echo")
	if _, err := t.Service.Runtime().Start(ctx, echo, benchEcho()); err != nil {
		return err
	}
	rt := t.Caller.Runtime()
	if err := benchWaitVisible(rt, echo, 10*time.Second); err != nil {
		return err
	}
	payload := make([]byte, o.Size)
	if _, err := rt.Call(ctx, service.Name(echo), "echo", payload); err != nil {
		return fmt.Errorf("bench: warm-up call: %w", err)
	}
	var count atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	stop := time.Now().Add(o.Duration)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			defer func() {
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
			for time.Now().Before(stop) {
				t0 := time.Now()
				if _, err := rt.Call(ctx, service.Name(echo), "echo", payload); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				local = append(local, time.Since(t0))
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("bench: call failed: %w", firstErr)
	}
	slices.Sort(lat)
	r.RequestsPerS = float64(count.Load()) / o.Duration.Seconds()
	if len(lat) > 0 {
		r.P50us = lat[len(lat)/2].Microseconds()
		r.P99us = lat[len(lat)*99/100].Microseconds()
		r.P999us = lat[len(lat)*999/1000].Microseconds()
	}
	return nil
}

// benchPublish publishes 100-byte reports from the caller side as fast as
// the publisher's actor can for the duration, and counts what the
// subscriber on the service side receives.
func benchPublish(ctx context.Context, o benchOptions, r *benchResult) error {
	t, err := startBenchTopology(ctx, o)
	if err != nil {
		return err
	}
	defer t.Stop()
	publisher := o.name("publisher")
	subscribed := make(chan struct{}, 1)
	done := make(chan struct{})
	var sent, got atomic.Int64
	var payload any = service.Raw{Data: make([]byte, o.Size)} // boxed once
	pub := service.SetupFunc(func(a *service.Agent) error {
		a.OnSubscription(func(ev service.SubscriptionEvent) {
			if ev.Subscribed {
				select {
				case subscribed <- struct{}{}:
				default:
				}
			}
		})
		a.Export("start", func() bool {
			stop := time.Now().Add(o.Duration)
			var burst func()
			// As fast as the link takes them: on Publish's overload
			// signal the publisher pauses briefly, as the peer's blocks
			// in its client when its buffer is full.
			burst = func() {
				var pause time.Duration
				n := 0
				for n < 1000 && pause == 0 {
					n++
					if a.Publish("rep.next", payload) != nil {
						pause = 50 * time.Microsecond
					}
				}
				sent.Add(int64(n))
				if time.Now().Before(stop) {
					a.After(pause, burst)
					return
				}
				close(done)
			}
			a.After(0, burst)
			return true
		})
		return nil
	})
	if _, err := t.Caller.Runtime().Start(ctx, publisher, pub); err != nil {
		return err
	}
	if err := benchWaitVisible(t.Service.Runtime(), publisher, 10*time.Second); err != nil {
		return err
	}
	sub := service.SetupFunc(func(a *service.Agent) error {
		_, err := a.Subscribe(service.Name(publisher), "rep.next", func(service.Report) { got.Add(1) })
		return err
	})
	if _, err := t.Service.Runtime().Start(ctx, "", sub); err != nil {
		return err
	}
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("bench: the subscription never reached the publisher")
	}
	start := time.Now()
	if _, err := t.Caller.Runtime().Call(ctx, service.Name(publisher), "start"); err != nil {
		return err
	}
	select {
	case <-done:
	case <-time.After(o.Duration + 30*time.Second):
		return fmt.Errorf("bench: the publisher did not finish")
	}
	// Give reports in flight a bounded moment to land, as the peer does.
	// A report dropped on the way (a slow subscriber loses its oldest,
	// counted) will not land: waiting for it would count the whole
	// moment as time spent receiving.
	settle := time.Now().Add(2 * time.Second)
	for got.Load()+int64(t.Dropped()) < sent.Load() && time.Now().Before(settle) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start).Seconds()
	r.Sent, r.Received = sent.Load(), got.Load()
	r.ReceivedPerS = float64(r.Received) / elapsed
	r.Dropped = t.Dropped()
	return nil
}
