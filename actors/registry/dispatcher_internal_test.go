package registry

import (
	"sync"
	"testing"
	"time"
)

// TestWorkerPoolShrinks: a burst grows the pool; steady light work then
// keeps using the most recently idle worker, so the others time out and
// the pool shrinks back.
func TestWorkerPoolShrinks(t *testing.T) {
	d := newWorkerDispatcher(300)
	d.idleTimeout = 100 * time.Millisecond
	// A burst: 20 jobs that overlap start 20 workers.
	var wg sync.WaitGroup
	release := make(chan struct{})
	for i := 0; i < 20; i++ {
		wg.Add(1)
		d.Schedule(func() { defer wg.Done(); <-release })
	}
	close(release)
	wg.Wait()
	idle := func() int { d.mu.Lock(); defer d.mu.Unlock(); return len(d.idle) }
	deadline := time.Now().Add(5 * time.Second)
	for idle() != 20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle workers after the burst, want 20", idle())
		}
		time.Sleep(time.Millisecond)
	}
	// Light work, one job at a time, for longer than the idle timeout.
	stop := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(stop) {
		done := make(chan struct{})
		d.Schedule(func() { close(done) })
		<-done
		time.Sleep(5 * time.Millisecond) // pacing the load, not synchronising
	}
	deadline = time.Now().Add(5 * time.Second)
	for idle() > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle workers under light load, want at most 2", idle())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
