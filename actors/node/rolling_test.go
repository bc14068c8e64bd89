package node_test

// A rolling restart under load: every server drained and restarted in
// turn, no call failed, none run twice, kept reports there for late
// subscribers throughout.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/service"
)

// runs counts the executions of each call id, across every replica.
type runs struct {
	mu sync.Mutex
	n  map[int64]int
}

func (r *runs) add(id int64) {
	r.mu.Lock()
	r.n[id]++
	r.mu.Unlock()
}

// rollingServices starts, on n, math (every server runs it: each call
// is counted by id) and status, which keeps its report for late
// subscribers.
func rollingServices(t *testing.T, n *node.Node, r *runs) {
	ctx := ctxFor(t, waitLong)
	if _, err := n.Runtime().Start(ctx, "math", service.SetupFunc(func(a *service.Agent) error {
		a.Export("multiply", func(id int64, x, y int) int {
			r.add(id)
			return x * y
		})
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Runtime().Start(ctx, "status", service.SetupFunc(func(a *service.Agent) error {
		return a.PublishRetained("up", n.Runtime().Node(), service.Forever)
	})); err != nil {
		t.Fatal(err)
	}
}

func TestRollingRestartNoFailedCall(t *testing.T) {
	if testing.Short() {
		t.Skip("a rolling restart under load takes a few seconds")
	}
	const size = 3
	r := &runs{n: map[int64]int{}}
	// Addresses each server restarts at: below the ephemeral range, so
	// no outgoing connection (of another test running meanwhile) takes
	// one while its server is down.
	ports, err := nodetest.FreePorts(2 * size)
	if err != nil {
		t.Fatal(err)
	}
	listens := make([]string, size)
	gossips := make([]string, size)
	for i := range size {
		listens[i], gossips[i] = fmt.Sprintf("127.0.0.1:%d", ports[2*i]), fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])
	}
	cfgOf := func(i int) node.Config {
		cfg := node.TestConfig(fmt.Sprintf("s%d", i))
		cfg.Listen, cfg.Gossip.BindAddr, cfg.Console = listens[i], gossips[i], nil
		for j := range size {
			if j != i {
				cfg.Gossip.Join = append(cfg.Gossip.Join, gossips[j])
			}
		}
		return cfg
	}
	servers := make([]*node.Node, size)
	var smu sync.Mutex // servers[i] is replaced while clients run
	for i := range size {
		n, err := node.Start(context.Background(), cfgOf(i))
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = n
		rollingServices(t, n, r)
	}
	t.Cleanup(func() {
		smu.Lock()
		defer smu.Unlock()
		for _, n := range servers {
			n.Close()
		}
	})
	// One client per server, the others as fallbacks, calling steadily.
	clients := make([]*node.Node, size)
	for i := range size {
		order := []string{listens[i]}
		for j := range size {
			if j != i {
				order = append(order, listens[j])
			}
		}
		clients[i] = nodetest.Client(t, fmt.Sprintf("c%d", i), order...)
	}
	for _, c := range clients {
		nodetest.WaitFor(t, waitLong, func() error {
			if n := len(c.Runtime().Lookup("math")); n != size {
				return fmt.Errorf("a client sees %d math services, want %d", n, size)
			}
			return nil
		})
	}

	var nextID, sent, failed atomic.Int64
	var phase atomic.Value // what the restart loop is doing, for failures
	phase.Store("load")
	var fmu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for ci, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := nextID.Add(1)
				sent.Add(1)
				began := phase.Load()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				v, err := service.CallFor[int](ctx, c.Runtime(), service.Name("math"), "multiply", id, 6, 7)
				cancel()
				if err != nil || v != 42 {
					failed.Add(1)
					fmu.Lock()
					if len(failures) < 10 {
						failures = append(failures, fmt.Sprintf("call %d from c%d (began during %v, ended during %v): %v, %v", id, ci, began, phase.Load(), v, err))
					}
					fmu.Unlock()
				}
			}
		}()
	}
	// Late subscribers get a kept status report throughout.
	lateSubscriber := func(c *node.Node) error {
		got := make(chan string, 8)
		ctx := ctxFor(t, waitLong)
		addr, err := c.Runtime().Start(ctx, "", service.SetupFunc(func(a *service.Agent) error {
			_, err := a.Subscribe(service.Name("status"), "up", func(rep service.Report) {
				var s string
				rep.Payload.Decode(&s)
				select {
				case got <- s:
				default:
				}
			})
			return err
		}))
		if err != nil {
			return err
		}
		defer c.Runtime().StopService(ctx, addr)
		select {
		case <-got:
			return nil
		case <-time.After(waitLong):
			return fmt.Errorf("a late subscriber got no kept status report")
		}
	}

	// Some load before and after each restart: that many more calls sent.
	moreCalls := func(n int64) {
		from := sent.Load()
		nodetest.WaitFor(t, waitLong, func() error {
			if d := sent.Load() - from; d < n {
				return fmt.Errorf("%d calls sent, waiting for %d", d, n)
			}
			return nil
		})
	}
	for i := range size {
		moreCalls(300)
		stopCtx, cancel := context.WithTimeout(context.Background(), waitLong)
		smu.Lock()
		old := servers[i]
		smu.Unlock()
		phase.Store(fmt.Sprintf("drain of s%d", i))
		if err := old.Stop(stopCtx); err != nil {
			t.Errorf("drain of s%d: %v", i, err)
		}
		cancel()
		phase.Store(fmt.Sprintf("s%d down", i))
		if err := lateSubscriber(clients[(i+1)%size]); err != nil {
			t.Errorf("with s%d down: %v", i, err)
		}
		phase.Store(fmt.Sprintf("restart of s%d", i))
		n, err := node.Start(context.Background(), cfgOf(i))
		if err != nil {
			t.Fatalf("restart s%d: %v", i, err)
		}
		smu.Lock()
		servers[i] = n
		smu.Unlock()
		rollingServices(t, n, r)
		for _, c := range clients {
			nodetest.WaitFor(t, waitLong, func() error {
				if n := len(c.Runtime().Lookup("math")); n != size {
					return fmt.Errorf("after restarting s%d a client sees %d math services, want %d", i, n, size)
				}
				return nil
			})
		}
		phase.Store(fmt.Sprintf("s%d back", i))
		if err := lateSubscriber(clients[i]); err != nil {
			t.Errorf("after restarting s%d: %v", i, err)
		}
	}
	moreCalls(300)
	close(stop)
	wg.Wait()

	r.mu.Lock()
	twice := 0
	for _, n := range r.n {
		if n > 1 {
			twice++
		}
	}
	ran := len(r.n)
	r.mu.Unlock()
	t.Logf("rolling restart of %d servers under load: %d calls sent, %d answered, %d failed, %d run twice",
		size, sent.Load(), sent.Load()-failed.Load(), failed.Load(), twice)
	if failed.Load() != 0 || twice != 0 {
		t.Fatalf("%d calls failed, %d ran twice (%d ran): %v", failed.Load(), twice, ran, failures)
	}
}
