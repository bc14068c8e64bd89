package registry

// What each method of a local service served: calls, failures by code
// and how long handlers took, for the console's metrics.

import (
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of the handler time
// histogram: from 50 µs (a handler that only computes) to 10 s (one that
// waits on others).
var LatencyBuckets = [...]float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// MethodStats counts what one method served. Observe is safe from any
// goroutine; handlers of one service run one at a time anyway.
type MethodStats struct {
	calls   atomic.Uint64
	nanos   atomic.Int64
	buckets [bucketCount]atomic.Uint64 // per bound of LatencyBuckets; the last is +Inf
	mu      sync.Mutex
	failed  map[Code]uint64
}

const bucketCount = len(LatencyBuckets) + 1

// Observe counts one request the method served in d, with code 0 when
// it answered, the failure's code otherwise.
func (m *MethodStats) Observe(d time.Duration, code Code) {
	m.calls.Add(1)
	m.nanos.Add(int64(d))
	s := d.Seconds()
	i := sort.SearchFloat64s(LatencyBuckets[:], s)
	m.buckets[i].Add(1)
	if code != 0 {
		m.mu.Lock()
		if m.failed == nil {
			m.failed = map[Code]uint64{}
		}
		m.failed[code]++
		m.mu.Unlock()
	}
}

// MethodSnapshot is a copy of a method's counters.
type MethodSnapshot struct {
	Method   string          `json:"method"`
	Calls    uint64          `json:"calls"`
	Seconds  float64         `json:"seconds"` // handler time, summed
	Buckets  []uint64        `json:"buckets"` // per LatencyBuckets bound, then +Inf; not cumulative
	Failures map[Code]uint64 `json:"failures,omitempty"`
}

func (m *MethodStats) snapshot(name string) MethodSnapshot {
	s := MethodSnapshot{Method: name, Calls: m.calls.Load(), Seconds: time.Duration(m.nanos.Load()).Seconds(),
		Buckets: make([]uint64, len(m.buckets))}
	for i := range m.buckets {
		s.Buckets[i] = m.buckets[i].Load()
	}
	m.mu.Lock()
	if len(m.failed) > 0 {
		s.Failures = maps.Clone(m.failed)
	}
	m.mu.Unlock()
	return s
}

// methodTable is a local service's methods' counters. Methods come from
// the service's own Export calls, never from what a caller sends, so the
// names are this process's (rule 36).
type methodTable struct {
	mu sync.Mutex
	m  map[string]*MethodStats
}

// Method returns the counters of the service's method name, made on
// first use; a restarted service keeps counting on the same ones.
func (l *Local) Method(name string) *MethodStats {
	l.methods.mu.Lock()
	defer l.methods.mu.Unlock()
	if l.methods.m == nil {
		l.methods.m = map[string]*MethodStats{}
	}
	ms := l.methods.m[name]
	if ms == nil {
		ms = &MethodStats{}
		l.methods.m[name] = ms
	}
	return ms
}

func (l *Local) methodSnapshots() []MethodSnapshot {
	l.methods.mu.Lock()
	names := make([]string, 0, len(l.methods.m))
	for n := range l.methods.m {
		names = append(names, n)
	}
	stats := make([]*MethodStats, len(names))
	sort.Strings(names)
	for i, n := range names {
		stats[i] = l.methods.m[n]
	}
	l.methods.mu.Unlock()
	out := make([]MethodSnapshot, len(names))
	for i, n := range names {
		out[i] = stats[i].snapshot(n)
	}
	return out
}
