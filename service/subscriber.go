package service

// The subscriber's side of reports: subscriptions that attach to
// publishers as they appear (rules 19, 21), directed reports taken
// with AcceptReports, and handing reports to the service's callbacks.

import (
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// Subscription is a standing interest in reports; Cancel ends it.
type Subscription struct {
	agent       *Agent
	target      Target
	pattern     string
	fn          func(Report)
	onPublisher func(PublisherEvent)
	onInPlace   func(PublisherEvent)
	watch       *Watch
	publishers  map[Address]string // attached publishers → name
	cancelled   bool
}

type pubPattern struct {
	pub     Address
	pattern string
}

// acceptor takes directed reports of one subject from a publisher.
type acceptor struct {
	from    Target // a Name or an Address
	subject string
	fn      func(Report)
}

type subscriberState struct {
	subs     []*Subscription
	attached map[pubPattern]int // subscriptions needing each (publisher, pattern)
	accept   handlers[acceptor]
	// gen counts changes to subs and their publishers; route is the
	// subscriptions the last (publisher, pattern) reports came with go
	// to, while gen stays route.gen: a stream of reports looks them up
	// once, not per report.
	gen   uint64
	route reportRoute
}

// reportRoute is where reports of one publisher and pattern go.
type reportRoute struct {
	gen     uint64
	from    Address
	pattern string
	subs    []*Subscription
	names   []string // the publisher's name in each subscription
}

// SubscribeOption configures a subscription.
type SubscribeOption func(*Subscription)

// OnPublisher calls fn when a publisher of the subscription appears or
// is withdrawn.
func OnPublisher(fn func(PublisherEvent)) SubscribeOption {
	return func(s *Subscription) { s.onPublisher = fn }
}

// Subscribe receives reports whose subject matches pattern (rule 19)
// from the services t names: every service of a Name, now and later; one
// Address; or the members of a Group as they join and leave. fn runs
// inside this service; reports from one publisher arrive in the order
// published, kept reports first.
func (a *Agent) Subscribe(t Target, pattern string, fn func(Report), opts ...SubscribeOption) (*Subscription, error) {
	if _, err := CompilePattern(pattern); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	switch t.(type) {
	case Name, Address, Group:
	default:
		return nil, fmt.Errorf("subscribe: cannot subscribe to %v", t)
	}
	s := &Subscription{agent: a, target: t, pattern: pattern, fn: fn, publishers: map[Address]string{}}
	for _, o := range opts {
		o(s)
	}
	a.sub.subs = append(a.sub.subs, s)
	a.sub.gen++
	s.watch = a.watch(t, s.registryEvent)
	a.publishInterests()
	return s, nil
}

func (s *Subscription) registryEvent(ev RegistryEvent) {
	switch ev.Kind {
	case Available:
		if _, group := s.target.(Group); !group {
			s.attach(ev.Binding)
		}
	case Joined:
		if g, group := s.target.(Group); group && string(g) == ev.Group {
			s.attach(ev.Binding)
		}
	case Withdrawn:
		if _, group := s.target.(Group); !group {
			s.detach(ev.Binding, true)
		}
	case Left:
		if g, group := s.target.(Group); group && string(g) == ev.Group {
			s.detach(ev.Binding, false)
		}
	}
}

func (s *Subscription) attach(b Binding) {
	if s.cancelled {
		return
	}
	if _, ok := s.publishers[b.Address]; ok {
		return
	}
	s.publishers[b.Address] = b.Name
	a := s.agent
	a.sub.gen++
	defer a.publishInterests()
	if a.sub.attached == nil {
		a.sub.attached = map[pubPattern]int{}
	}
	k := pubPattern{b.Address, s.pattern}
	a.sub.attached[k]++
	if a.sub.attached[k] == 1 {
		a.k.Route(&registry.Envelope{Kind: registry.KindSubscribe, To: b.Address, From: a.ref.Addr(), Subject: s.pattern})
	}
	if s.onInPlace != nil {
		s.confirmInPlace(b)
	}
	if s.onPublisher != nil {
		a.guard("publisher handler", func() { s.onPublisher(PublisherEvent{Publisher: b, Available: true}) })
	}
}

// detach stops listening to a publisher; gone says it was withdrawn, so
// there is nobody to tell.
func (s *Subscription) detach(b Binding, gone bool) {
	if _, ok := s.publishers[b.Address]; !ok {
		return
	}
	delete(s.publishers, b.Address)
	a := s.agent
	a.sub.gen++
	defer a.publishInterests()
	k := pubPattern{b.Address, s.pattern}
	a.sub.attached[k]--
	if a.sub.attached[k] <= 0 {
		delete(a.sub.attached, k)
		if !gone {
			a.k.Route(&registry.Envelope{Kind: registry.KindUnsubscribe, To: b.Address, From: a.ref.Addr(), Subject: s.pattern})
		}
	}
	if s.onPublisher != nil && !s.cancelled {
		a.guard("publisher handler", func() { s.onPublisher(PublisherEvent{Publisher: b, Available: false}) })
	}
}

// Cancel ends the subscription; publishers are told.
func (s *Subscription) Cancel() {
	if s == nil || s.cancelled {
		return
	}
	s.cancelled = true
	s.watch.Cancel()
	for addr, name := range s.publishers {
		s.detach(Binding{Address: addr, Name: name}, false)
	}
	a := s.agent
	a.sub.subs = slices.DeleteFunc(a.sub.subs, func(x *Subscription) bool { return x == s })
	a.sub.gen++
	a.publishInterests()
}

// Publishers returns the addresses of the publishers the subscription is
// attached to.
func (s *Subscription) Publishers() []Address {
	out := make([]Address, 0, len(s.publishers))
	for a := range s.publishers {
		out = append(out, a)
	}
	return out
}

// AcceptReports receives reports with exactly this subject from the
// services t names (a Name or an Address) without subscribing: the
// publisher sends them with SendReport.
func (a *Agent) AcceptReports(t Target, subject string, fn func(Report)) *Handler {
	return a.sub.accept.add(&acceptor{from: t, subject: subject, fn: fn})
}

func (a *Agent) receiveReport(e *registry.Envelope) {
	r := Report{Publisher: e.From, Subject: e.Subject, Pattern: e.Pattern,
		Payload: Payload{ContentType: e.ContentType, Data: e.Data}}
	delivered := false
	if e.Pattern != "" {
		route := a.reportRoute(e.From, e.Pattern)
		subs, names := route.subs, route.names // a handler may change the route
		for i, s := range subs {
			if s.cancelled { // by a handler of this very report
				continue
			}
			r.PublisherName = names[i]
			a.deliverReport(s.fn, r)
			delivered = true
		}
	}
	if delivered || len(a.sub.accept.list) == 0 {
		return
	}
	looked := false
	for _, acc := range a.sub.accept.list {
		if acc.subject != e.Subject {
			continue
		}
		switch from := acc.from.(type) {
		case Address:
			if from != e.From {
				continue
			}
		case Name:
			if !looked {
				if b, ok := a.rt.LookupAddress(e.From); ok {
					r.PublisherName = b.Name
				}
				looked = true
			}
			if r.PublisherName == "" || string(from) != r.PublisherName {
				continue
			}
		default:
			continue
		}
		a.deliverReport(acc.fn, r)
	}
}

// reportRoute returns the subscriptions reports of publisher from that
// matched pattern go to.
func (a *Agent) reportRoute(from Address, pattern string) *reportRoute {
	rt := &a.sub.route
	if rt.gen == a.sub.gen && rt.from == from && rt.pattern == pattern && rt.pattern != "" {
		return rt
	}
	// Fresh slices: a handler running from the old ones may change the
	// subscriptions meanwhile.
	*rt = reportRoute{gen: a.sub.gen, from: from}
	for _, s := range a.sub.subs {
		if s.pattern != pattern {
			continue
		}
		if name, ok := s.publishers[from]; ok {
			rt.pattern = s.pattern // not pattern: it shares the memory of a batch of envelopes
			rt.subs = append(rt.subs, s)
			rt.names = append(rt.names, name)
		}
	}
	return rt
}

// deliverReport runs a report handler, logging a panic instead of
// stopping the service. (A closure through guard would cost an
// allocation per report.)
func (a *Agent) deliverReport(fn func(Report), r Report) {
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("report handler panicked", "panic", p, "stack", string(debug.Stack()))
			a.handlerPanicked()
		}
	}()
	fn(r)
}

// unsubscribeAll tells every publisher this stopping service listened to.
func (a *Agent) unsubscribeAll() {
	for k := range a.sub.attached {
		a.k.Route(&registry.Envelope{Kind: registry.KindUnsubscribe, To: k.pub, From: a.ref.Addr(), Subject: k.pattern})
	}
	a.sub.attached = nil
}
