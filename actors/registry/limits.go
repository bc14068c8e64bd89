package registry

// The subscriptions this process's publishers hold for others, counted
// against the bounds of rule 36.

import (
	"fmt"
	"sync"
)

// subscriptionSlots counts the subscription patterns this process's
// publishers hold for other processes, per process and in all, against
// Config.MaxSubscriptionsPerProcess and Config.MaxSubscriptions
// (rule 36). Subscribers in this process take no slot.
type subscriptionSlots struct {
	mu         sync.Mutex
	perProcess int
	max        int
	byProc     map[ProcessID]int
	total      int
}

func (s *subscriptionSlots) init(perProcess, max int) {
	s.perProcess, s.max, s.byProc = perProcess, max, map[ProcessID]int{}
}

// take takes a slot for one pattern held for process p. When none is
// left it takes nothing and says why.
func (s *subscriptionSlots) take(p ProcessID) (refused string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.byProc[p]; n >= s.perProcess {
		return fmt.Sprintf("process %s holds %d subscriptions here, the limit (MaxSubscriptionsPerProcess)", p, n)
	}
	if s.total >= s.max {
		return fmt.Sprintf("this process holds %d subscriptions for others, the limit (MaxSubscriptions)", s.total)
	}
	s.byProc[p]++
	s.total++
	return ""
}

// give gives back n slots of process p.
func (s *subscriptionSlots) give(p ProcessID, n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byProc[p] -= n; s.byProc[p] <= 0 {
		delete(s.byProc, p)
	}
	s.total -= n
}

// held returns how many slots are taken.
func (s *subscriptionSlots) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}
