package registry

import (
	"sort"
	"sync/atomic"
)

// What the console shows of services' interests. Each agent publishes a
// fresh snapshot whenever its subscriptions, subscribers or watches
// change, so the console reads them without disturbing the actor.

// SubscriptionInfo is one report subscription of a local service.
type SubscriptionInfo struct {
	Subscriber     Address   `json:"subscriber"`
	SubscriberName string    `json:"subscriber_name"`
	Target         string    `json:"target"`
	Pattern        string    `json:"pattern"`
	Publishers     []Address `json:"publishers"`
}

// SubscriberInfo is a subscriber of a local publisher.
type SubscriberInfo struct {
	Publisher     Address  `json:"publisher"`
	PublisherName string   `json:"publisher_name"`
	Subscriber    Address  `json:"subscriber"`
	Patterns      []string `json:"patterns"`
}

// WatchInfo is one registry watch of a local service.
type WatchInfo struct {
	Watcher     Address `json:"watcher"`
	WatcherName string  `json:"watcher_name"`
	Target      string  `json:"target"`
}

// Interests lists the report subscriptions, publishers' subscribers and
// registry watches of this process's services.
type Interests struct {
	Subscriptions []SubscriptionInfo `json:"subscriptions"`
	Subscribers   []SubscriberInfo   `json:"subscribers"`
	Watches       []WatchInfo        `json:"watches"`
}

// Interest is what one local service listens to, as its agent last
// published it (Local.SetInterest).
type Interest struct {
	Subscriptions []SubscriptionInfo
	Subscribers   []SubscriberInfo
	Watches       []WatchInfo
}

// Interests returns what this process's services listen to.
func (rt *Kernel) Interests() Interests {
	rt.ix.mu.RLock()
	refs := make([]*Local, 0, len(rt.ix.locals))
	for _, r := range rt.ix.locals {
		refs = append(refs, r)
	}
	rt.ix.mu.RUnlock()
	sort.Slice(refs, func(i, j int) bool { return refs[i].seq < refs[j].seq })
	out := Interests{Subscriptions: []SubscriptionInfo{}, Subscribers: []SubscriberInfo{}, Watches: []WatchInfo{}}
	for _, r := range refs {
		if in := r.interests.Load(); in != nil {
			out.Subscriptions = append(out.Subscriptions, in.Subscriptions...)
			out.Subscribers = append(out.Subscribers, in.Subscribers...)
			out.Watches = append(out.Watches, in.Watches...)
		}
	}
	return out
}

// CompareAddress orders addresses by process, then service id.
func CompareAddress(x, y Address) int {
	switch {
	case x.Process != y.Process:
		if x.Process < y.Process {
			return -1
		}
		return 1
	case x.ID < y.ID:
		return -1
	case x.ID > y.ID:
		return 1
	}
	return 0
}

// Stats are a runtime's counters.
type Stats struct {
	Requests      uint64          `json:"requests"`       // requests sent by this process
	Failures      map[Code]uint64 `json:"failures"`       // failures produced or received, by code
	LateReplies   uint64          `json:"late_replies"`   // answers that came after the caller gave up
	Undelivered   uint64          `json:"undelivered"`    // envelopes with nowhere to go
	ServiceDrops  uint64          `json:"service_drops"`  // reports and messages dropped for slow services (ServiceQueueLimit)
	LocalServices int             `json:"local_services"` // services of this process, hidden ones too
	Bindings      int             `json:"bindings"`       // visible bindings, local and remote
	Processes     int             `json:"processes"`      // other processes reachable
	Pending       int             `json:"pending"`        // requests waiting for answers
	// Subscriptions is how many subscription patterns this process's
	// publishers hold for other processes (MaxSubscriptions bounds it).
	Subscriptions int `json:"subscriptions"`
	// SubscriptionsRefused counts subscriptions from other processes
	// ignored over MaxSubscriptionsPerProcess or MaxSubscriptions.
	SubscriptionsRefused uint64 `json:"subscriptions_refused"`
	// Delayed is how many requests services delayed and have not
	// answered yet (MaxDelayedTotal bounds it).
	Delayed int64 `json:"delayed"`
	// DelayedRefused counts requests refused because their service or
	// the process held too many delayed requests.
	DelayedRefused uint64 `json:"delayed_refused"`
	// CancelsWaiting is how many cancels (rule 31) came for requests
	// still waiting in a mailbox, which will then not run;
	// CancelsDropped counts those over the table's bounds.
	CancelsWaiting int    `json:"cancels_waiting"`
	CancelsDropped uint64 `json:"cancels_dropped"`
	// Services are the per-service counters, in the order the services
	// started.
	Services []ServiceStats `json:"services"`
}

// ServiceStats are one local service's counters.
type ServiceStats struct {
	Name    string  `json:"name"` // "" for an anonymous service
	Address Address `json:"address"`
	// QueuedBytes is what waits in the service's mailbox (bounded by
	// ServiceQueueLimit).
	QueuedBytes int64 `json:"queued_bytes"`
	// Dropped counts reports and one-way messages dropped for want of
	// room in the mailbox.
	Dropped uint64 `json:"dropped"`
	// Refused counts requests turned away: over the queue limit, or over
	// MaxDelayed / MaxDelayedTotal.
	Refused uint64 `json:"refused"`
	// Delayed is how many delayed requests the service has not answered.
	Delayed int64 `json:"delayed"`
	// BusySeconds is how long the running handler has run, once that is
	// past SlowHandler; 0 otherwise.
	BusySeconds float64 `json:"busy_seconds"`
	// Stuck says a handler has been running past SlowHandler.
	Stuck bool `json:"stuck"`
	// Restarts counts the service's restarts after panics in its
	// handlers (service.RestartOnPanic).
	Restarts uint64 `json:"restarts"`
	// Methods are what each exported method served, by method name.
	Methods []MethodSnapshot `json:"methods,omitempty"`
}

// Stats returns the runtime's counters.
func (rt *Kernel) Stats() Stats {
	s := Stats{Requests: rt.stats.requests.Load(), LateReplies: rt.stats.lateReplies.Load(),
		Undelivered: rt.stats.undelivered.Load(), ServiceDrops: rt.stats.droppedAtService.Load(),
		Failures: map[Code]uint64{}, Pending: rt.pending.len(),
		Subscriptions: rt.subs.held(), SubscriptionsRefused: rt.stats.subsRefused.Load(),
		Delayed: rt.delayed.Load(), DelayedRefused: rt.stats.delayedRefused.Load(),
		CancelsDropped: rt.cancels.dropped.Load()}
	rt.cancels.mu.Lock()
	s.CancelsWaiting = len(rt.cancels.early)
	rt.cancels.mu.Unlock()
	rt.stats.failures.Range(func(k, v any) bool {
		s.Failures[k.(Code)] = v.(*atomic.Uint64).Load()
		return true
	})
	rt.ix.mu.RLock()
	s.LocalServices, s.Bindings, s.Processes = len(rt.ix.locals), len(rt.ix.byAddr), len(rt.ix.procs)
	refs := make([]*Local, 0, len(rt.ix.locals))
	for _, r := range rt.ix.locals {
		refs = append(refs, r)
	}
	rt.ix.mu.RUnlock()
	sort.Slice(refs, func(i, j int) bool { return refs[i].seq < refs[j].seq })
	s.Services = make([]ServiceStats, len(refs))
	for i, r := range refs {
		busy, stuck := r.mb.busy()
		s.Services[i] = ServiceStats{Name: r.name, Address: r.addr, QueuedBytes: r.mb.queuedBytes(),
			Dropped: r.dropped.Load(), Refused: r.refused.Load(), Delayed: r.delayed.Load(),
			BusySeconds: busy.Seconds(), Stuck: stuck, Restarts: r.restarts.Load(), Methods: r.methodSnapshots()}
	}
	return s
}
