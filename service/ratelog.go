package service

// A warning let through at most once per interval.

import "time"

// rateLog lets a repeated warning through at most once per interval,
// with how many times it happened since the last line. Not safe for
// concurrent use: each service keeps its own.
type rateLog struct {
	last time.Time
	n    int
}

// hit counts an occurrence and reports whether to log now, with the
// count to show.
func (r *rateLog) hit(now time.Time, every time.Duration) (int, bool) {
	r.n++
	if !r.last.IsZero() && now.Sub(r.last) < every {
		return 0, false
	}
	n := r.n
	r.n, r.last = 0, now
	return n, true
}
