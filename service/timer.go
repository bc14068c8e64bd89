package service

// Timers whose callbacks run inside their service.

import "time"

// Timer is a timer whose callback runs inside its service.
type Timer struct {
	agent  *Agent
	id     uint64
	t      *time.Timer
	every  time.Duration
	fn     func()
	active bool
}

type timerFired struct{ id uint64 }

// After runs fn inside this service once d has passed.
func (a *Agent) After(d time.Duration, fn func()) *Timer { return a.startTimer(d, 0, fn) }

// Every runs fn inside this service every d, until stopped.
func (a *Agent) Every(d time.Duration, fn func()) *Timer { return a.startTimer(d, d, fn) }

func (a *Agent) startTimer(d, every time.Duration, fn func()) *Timer {
	if a.stopping {
		return &Timer{agent: a}
	}
	id := a.k.NextID()
	t := &Timer{agent: a, id: id, every: every, fn: fn, active: true}
	a.timers[id] = t
	root, pid := a.k.ActorSystem().Root, a.ref.PID()
	t.t = time.AfterFunc(d, func() { root.Send(pid, &timerFired{id: id}) })
	return t
}

// Stop stops the timer; a firing already queued is dropped. It reports
// whether the timer was still active.
func (t *Timer) Stop() bool {
	if t == nil || !t.active {
		return false
	}
	t.active = false
	t.t.Stop()
	delete(t.agent.timers, t.id)
	return true
}

func (a *Agent) fireTimer(m *timerFired) {
	t := a.timers[m.id]
	if t == nil {
		return // stopped after it fired
	}
	if t.every > 0 {
		t.t.Reset(t.every)
	} else {
		t.active = false
		delete(a.timers, m.id)
	}
	a.guard("timer", t.fn)
}
