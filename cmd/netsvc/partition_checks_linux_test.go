package main

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/service"
)

// What the partition tests check with and call by: the bindings a node
// should see, the address of a node's math, and a monitor of the caller
// process's own stalls. (cmd/netsvc-chaos has the same checks.)

// mathOf returns the address of the math service of node name as c sees it.
func mathOf(c *node.Node, name string) (service.Address, bool) {
	for _, b := range c.Runtime().Lookup(demoMath) {
		if b.Node == name {
			return b.Address, true
		}
	}
	return service.Address{}, false
}

// checkBindings checks what who sees: math and seed once for each live
// node, and no service of any other process.
func checkBindings(who string, bs []service.Binding, live map[service.ProcessID]string) error {
	var errs []string
	count := map[string]map[service.ProcessID]int{demoMath: {}, demoSeed: {}}
	for _, b := range bs {
		p := b.Address.Process
		if _, ok := live[p]; !ok {
			errs = append(errs, fmt.Sprintf("stale binding %s of %s (process %s)", b.Name, b.Node, p))
			continue
		}
		if m := count[b.Name]; m != nil {
			m[p]++
		}
	}
	for _, name := range []string{demoMath, demoSeed} {
		for p, node := range live {
			if k := count[name][p]; k != 1 {
				errs = append(errs, fmt.Sprintf("%d bindings of %s of %s", k, name, node))
			}
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%s sees %s", who, strings.Join(errs, ", "))
	}
	return nil
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
