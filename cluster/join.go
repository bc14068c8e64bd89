package cluster

// Joining the seeds in the background, retrying with backoff.

import (
	"errors"
	"math/rand/v2"
	"strings"
	"time"
)

// Join backoff: the first retry comes after joinBackoffMin, each next one
// after twice as long, up to joinBackoffMax (each ±20 %).
const (
	joinBackoffMin = 100 * time.Millisecond
	joinBackoffMax = 5 * time.Second

	// joinFollowUp is how long after a successful join the seeds are
	// joined once more.
	joinFollowUp = time.Second
)

// joinLoop joins the seeds, retrying until one answers, joins them once
// more a second later, then waits; when the member finds itself alone
// again (every peer went down), it starts over. It returns when joinStop
// is closed.
//
// The first join is always attempted, even if others have already joined
// this member: with every member joining its own seeds, members started
// at the same moment cannot split into separate clusters.
func (c *Cluster) joinLoop(seeds []string) {
	defer close(c.joinDone)
	delay := joinBackoffMin
	failures := 0       // in the current run of attempts
	keysWarned := false // a failure for want of the right gossip key was logged
	started := time.Now()
	for {
		err := c.joinOnce(seeds)
		if errors.Is(err, errStopped) {
			return
		}
		if err == nil {
			c.log.Info("joined", "seeds", seeds, "after", time.Since(started).Round(time.Millisecond))
			delay, failures = joinBackoffMin, 0
			// Once more a little later: members that joined at the same
			// time as this one may have missed each other's gossip, which
			// otherwise only the next push/pull repairs (5–30 s).
			if !c.sleep(joinFollowUp) {
				return
			}
			if err := c.joinOnce(seeds); errors.Is(err, errStopped) {
				return
			} else if err != nil {
				c.log.Debug("follow-up join failed", "seeds", seeds, "err", err)
			}
			if !c.waitAlone() {
				return
			}
			started = time.Now()
			continue
		}
		c.joinFailures.Add(1)
		failures++
		switch {
		case !keysWarned && keysDiffer(err):
			// Seeds not up yet is the usual reason, and passes; keys that
			// differ do not pass by themselves: say so louder, at once.
			keysWarned = true
			c.log.Warn("cannot join yet; retrying in the background", "seeds", seeds, "err", err)
		case failures == 1:
			c.log.Info("cannot join yet; retrying in the background", "seeds", seeds, "err", err)
		case delay == joinBackoffMax && failures%12 == 0: // about once a minute
			c.log.Warn("still cannot join", "seeds", seeds, "attempts", failures, "err", err)
		default:
			c.log.Debug("join failed", "seeds", seeds, "attempt", failures, "retry_in", delay, "err", err)
		}
		if !c.sleep(jitter(delay)) {
			return
		}
		delay = min(2*delay, joinBackoffMax)
	}
}

// keysDiffer reports a join refused because the gossip keys differ (or
// one side has none). memberlist says so only in its errors' words.
func keysDiffer(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "crypt") // decrypt, encrypted, encryption
}

// waitAlone waits until memberlist counts no other live member; it returns
// false if the loop must stop.
func (c *Cluster) waitAlone() bool {
	for {
		select {
		case <-c.joinStop:
			return false
		case <-c.alone:
		}
		if c.ml.NumMembers() <= 1 {
			return true
		}
	}
}

var errStopped = errors.New("cluster: stopped")

// joinOnce tries every seed once. It succeeds when at least one answered
// and memberlist now counts another member (incompatible ones are never
// counted: the alive delegate keeps them out).
func (c *Cluster) joinOnce(seeds []string) error {
	var errs []error
	answered := 0
	for _, seed := range seeds {
		select {
		case <-c.joinStop:
			return errStopped
		default:
		}
		n, err := c.ml.Join([]string{seed})
		if err != nil {
			errs = append(errs, flatten(err)...)
			continue
		}
		answered += n
	}
	switch {
	case answered == 0:
		return errors.Join(errs...)
	case c.ml.NumMembers() <= 1:
		return errors.New("seeds answered, but no compatible member is alive (see warnings about incompatible members)")
	}
	return nil
}

// sleep waits for d; it returns false if the loop must stop.
func (c *Cluster) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.joinStop:
		return false
	case <-t.C:
		return true
	}
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// flatten unwraps memberlist's multierror (which prints as a multi-line
// list) into its errors.
func flatten(err error) []error {
	var w interface{ WrappedErrors() []error }
	if errors.As(err, &w) {
		if errs := w.WrappedErrors(); len(errs) > 0 {
			return errs
		}
	}
	return []error{err}
}
