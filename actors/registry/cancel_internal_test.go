package registry

import (
	"testing"
	"time"
)

// Cancels that come after their request was served (crossing its
// answer) are forgotten at their deadline, and the table empties again.
func TestCancelTableForgetsLateCancels(t *testing.T) {
	c := newCancelTable()
	from := Address{Process: 7, ID: 1}
	c.arrived(from, 1, time.Now().Add(-time.Second).UnixNano()) // its deadline passed
	if c.n.Load() != 1 {
		t.Fatalf("n = %d", c.n.Load())
	}
	c.swept = 0 // as if the last sweep was long ago
	if c.cancelled(from, 2) {
		t.Fatal("another request reads as cancelled")
	}
	if c.n.Load() != 0 || len(c.early) != 0 || len(c.perProc) != 0 {
		t.Fatalf("after a sweep: n %d, %d early, %d processes", c.n.Load(), len(c.early), len(c.perProc))
	}
	// Bounds: past a process's share, cancels are dropped and counted.
	for i := range maxCancelsPerProcess + 10 {
		c.arrived(from, uint64(100+i), time.Now().Add(time.Minute).UnixNano())
	}
	if len(c.early) != maxCancelsPerProcess || c.dropped.Load() != 10 {
		t.Fatalf("%d held, %d dropped", len(c.early), c.dropped.Load())
	}
}
