package service

// Reports, the publisher's side: publishing (kept reports included,
// rules 18-20), directed reports, expiring kept reports, and the
// subscribers a publisher holds (within the bounds of rule 36).

import (
	"fmt"
	"slices"
	"time"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// Forever is the lifetime of a report kept until replaced or expired on
// demand.
const Forever time.Duration = -1

// Report is a report a subscriber receives.
type Report struct {
	Publisher     Address // the service that published it
	PublisherName string  // its name, when known
	Subject       string
	Pattern       string // the subscription pattern it matched; "" for a directed report no pattern matched
	Payload
}

// SubscriptionEvent tells a publisher that a subscriber subscribed to or
// unsubscribed from a pattern (rule 28).
type SubscriptionEvent struct {
	Subscriber Address
	Pattern    string
	Subscribed bool // false: unsubscribed, or the subscriber went away
}

// PublisherEvent tells a subscriber that a publisher of one of its
// subscriptions appeared or was withdrawn (rule 21).
type PublisherEvent struct {
	Publisher Binding
	Available bool
}

type kept struct {
	payload   Payload
	published time.Time
	expires   time.Time // zero: never
}

type subscriberPatterns struct {
	addr     Address
	patterns []Pattern // in the order subscribed
	watch    uint64    // registry watch on the subscriber's address
}

type publisherState struct {
	subscribers    map[Address]*subscriberPatterns
	order          []*subscriberPatterns // in the order they first subscribed
	kept           map[string]*kept
	onSubscription handlers[func(SubscriptionEvent)]
	refusedLog     rateLog // subscriptions over the limits, for the log
}

// OnSubscription adds a callback for subscribers coming and going on
// this service's reports, so it can send a new subscriber the current
// state (see SendReport).
func (a *Agent) OnSubscription(fn func(SubscriptionEvent)) *Handler {
	return a.pub.onSubscription.add(&fn)
}

// Publish sends a report to every subscriber whose pattern matches the
// subject, once per matching pattern (rules 18, 19). A report kept
// for the subject from an earlier PublishRetained is dropped.
func (a *Agent) Publish(subject string, v any) error {
	return a.PublishRetained(subject, v, 0)
}

// PublishRetained publishes and keeps the report for lifetime (Forever
// for no limit), so subscribers arriving later receive it first
// (rule 20). A zero lifetime is Publish.
//
// When a subscriber's link is congested, reports to it are dropped
// oldest first (and counted) rather than queued without bound: Publish
// then returns a CodeOverloaded failure, after sending the report to
// everyone else, so a publisher can slow down.
func (a *Agent) PublishRetained(subject string, v any, lifetime time.Duration) error {
	if subject == "" {
		return fmt.Errorf("publish: empty subject")
	}
	p, err := Encode(v)
	if err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	if len(p.Data) > a.cfg.MaxPayload {
		return registry.RuntimeFailuref(CodePayloadTooLarge, "report %s is %d bytes, the limit is %d", subject, len(p.Data), a.cfg.MaxPayload)
	}
	a.keep(subject, p, lifetime)
	var congested *Failure
	for _, sub := range a.pub.order {
		for _, pt := range sub.patterns {
			if pt.Match(subject) {
				if f := a.sendReport(sub.addr, subject, pt.text, p); f != nil && f.Code == CodeOverloaded {
					congested = f
				}
			}
		}
	}
	if congested != nil {
		return congested
	}
	return nil
}

func (a *Agent) keep(subject string, p Payload, lifetime time.Duration) {
	if lifetime == 0 {
		delete(a.pub.kept, subject)
		return
	}
	if a.pub.kept == nil {
		a.pub.kept = map[string]*kept{}
	}
	now := time.Now()
	k := &kept{payload: p, published: now}
	if lifetime > 0 {
		k.expires = now.Add(lifetime)
	}
	a.pub.kept[subject] = k
}

func (a *Agent) sendReport(to Address, subject, pattern string, p Payload) *Failure {
	if to.Process != a.k.ProcessID() {
		// A link encodes the envelope before Send returns, so one
		// envelope serves every remote report of this agent.
		e := &a.scratch
		*e = registry.Envelope{Kind: registry.KindReport, To: to, From: a.ref.Addr(), Subject: subject, Pattern: pattern,
			ContentType: p.ContentType, Data: p.Data}
		f := a.k.Route(e)
		*e = registry.Envelope{}
		return f
	}
	return a.k.Route(&registry.Envelope{Kind: registry.KindReport, To: to, From: a.ref.Addr(), Subject: subject, Pattern: pattern,
		ContentType: p.ContentType, Data: p.Data})
}

// SendReport sends a report to one subscriber only, bypassing the kept
// reports (rule 29): once per pattern of its that matches, or once
// without a pattern when none does (the subscriber takes those with
// AcceptReports). The subscriber must have subscribed to this service.
func (a *Agent) SendReport(to Address, subject string, v any) error {
	s := a.pub.subscribers[to]
	if s == nil {
		return fmt.Errorf("send report: %s has not subscribed to %s", to, registry.DisplayName(a.ref.Name()))
	}
	p, err := Encode(v)
	if err != nil {
		return fmt.Errorf("send report %s: %w", subject, err)
	}
	sent := false
	for _, pt := range s.patterns {
		if pt.Match(subject) {
			a.sendReport(to, subject, pt.text, p)
			sent = true
		}
	}
	if !sent {
		a.sendReport(to, subject, "", p)
	}
	return nil
}

// ExpireReports drops kept reports whose subject matches pattern and
// that were published more than olderThan ago (rule 30).
func (a *Agent) ExpireReports(pattern string, olderThan time.Duration) error {
	pt, err := CompilePattern(pattern)
	if err != nil {
		return err
	}
	cutoff := time.Now().Add(-olderThan)
	for s, k := range a.pub.kept {
		if pt.Match(s) && !k.published.After(cutoff) {
			delete(a.pub.kept, s)
		}
	}
	return nil
}

// ExpireAllReports drops every kept report published more than olderThan ago.
func (a *Agent) ExpireAllReports(olderThan time.Duration) {
	cutoff := time.Now().Add(-olderThan)
	for s, k := range a.pub.kept {
		if !k.published.After(cutoff) {
			delete(a.pub.kept, s)
		}
	}
}

// PurgeReports drops every kept report.
func (a *Agent) PurgeReports() { clear(a.pub.kept) }

// KeptReports returns the subjects of the unexpired kept reports.
func (a *Agent) KeptReports() []string {
	now := time.Now()
	var out []string
	for s, k := range a.pub.kept {
		if k.expires.IsZero() || now.Before(k.expires) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// Subscribers returns the services subscribed to this one, with their patterns.
func (a *Agent) Subscribers() map[Address][]string {
	out := map[Address][]string{}
	for addr, s := range a.pub.subscribers {
		for _, p := range s.patterns {
			out[addr] = append(out[addr], p.text)
		}
	}
	return out
}

// subscribed handles a subscriber's request for a pattern. A pattern
// held for another process takes one of the process's subscription
// slots (rule 36); past the bounds it is ignored, logged and
// counted.
func (a *Agent) subscribed(e *registry.Envelope) {
	if a.stopping {
		return // withdrawn: its subscribers are let go as it stops
	}
	pt, err := CompilePattern(e.Subject)
	if err != nil {
		a.log.Debug("ignoring bad subscription", "subscriber", e.From, "error", err)
		return
	}
	s := a.pub.subscribers[e.From]
	if s != nil && slices.ContainsFunc(s.patterns, func(p Pattern) bool { return p.text == pt.text }) {
		return // a repeated subscription is not recorded again, nor replayed
	}
	if e.From.Process != a.k.ProcessID() {
		if why := a.k.TakeSubscription(e.From.Process); why != "" {
			a.refuseSubscription(e, why)
			return
		}
	}
	if a.pub.subscribers == nil {
		a.pub.subscribers = map[Address]*subscriberPatterns{}
	}
	if s == nil {
		s = &subscriberPatterns{addr: e.From}
		a.pub.subscribers[e.From] = s
		a.pub.order = append(a.pub.order, s)
		sub := e.From
		// Forget the subscriber when it goes away, however it goes.
		w := a.watch(sub, func(ev RegistryEvent) {
			if ev.Kind == Withdrawn {
				a.dropSubscriber(sub)
			}
		})
		s.watch = w.id
	}
	s.patterns = append(s.patterns, pt)
	a.publishInterests()
	// Replay first: what the publisher sends from its subscription
	// handler is newer than the kept reports and must arrive after them.
	a.replay(e.From, pt)
	a.notifySubscription(SubscriptionEvent{Subscriber: e.From, Pattern: pt.text, Subscribed: true})
}

// refuseSubscription counts a subscription over the bounds and logs it,
// at most once a minute per publisher.
func (a *Agent) refuseSubscription(e *registry.Envelope, why string) {
	if n, ok := a.pub.refusedLog.hit(time.Now(), time.Minute); ok {
		a.log.Warn("ignoring subscriptions over the limit", "subscriber", e.From.String(), "pattern", e.Subject,
			"reason", why, "refused", n)
	}
}

// releaseSlots gives back the subscription slots of n patterns held for
// sub.
func (a *Agent) releaseSlots(sub Address, n int) {
	if sub.Process != a.k.ProcessID() {
		a.k.GiveSubscriptions(sub.Process, n)
	}
}

// releaseSubscribers lets every subscriber go as the publisher stops,
// giving back their slots.
func (a *Agent) releaseSubscribers() {
	for _, s := range a.pub.order {
		a.releaseSlots(s.addr, len(s.patterns))
	}
	a.pub.subscribers, a.pub.order = nil, nil
}

// replay sends a new subscription the kept reports it matches, before
// any later live report (rule 20). Expired ones met are purged.
func (a *Agent) replay(to Address, pt Pattern) {
	now := time.Now()
	subjects := make([]string, 0, len(a.pub.kept))
	for s := range a.pub.kept {
		subjects = append(subjects, s)
	}
	slices.Sort(subjects)
	for _, s := range subjects {
		k := a.pub.kept[s]
		if !k.expires.IsZero() && !now.Before(k.expires) {
			delete(a.pub.kept, s)
			continue
		}
		if pt.Match(s) {
			a.sendReport(to, s, pt.text, k.payload)
		}
	}
}

func (a *Agent) unsubscribed(e *registry.Envelope) {
	s := a.pub.subscribers[e.From]
	if s == nil {
		return
	}
	i := slices.IndexFunc(s.patterns, func(p Pattern) bool { return p.text == e.Subject })
	if i < 0 {
		return
	}
	s.patterns = slices.Delete(s.patterns, i, i+1)
	a.releaseSlots(e.From, 1)
	a.publishInterests()
	a.notifySubscription(SubscriptionEvent{Subscriber: e.From, Pattern: e.Subject})
	if len(s.patterns) == 0 {
		a.removeSubscriber(e.From)
	}
}

func (a *Agent) dropSubscriber(sub Address) {
	s := a.pub.subscribers[sub]
	if s == nil {
		return
	}
	patterns := s.patterns
	a.removeSubscriber(sub)
	for _, p := range patterns {
		a.notifySubscription(SubscriptionEvent{Subscriber: sub, Pattern: p.text})
	}
}

func (a *Agent) removeSubscriber(sub Address) {
	s := a.pub.subscribers[sub]
	a.releaseSlots(sub, len(s.patterns))
	delete(a.pub.subscribers, sub)
	a.pub.order = slices.DeleteFunc(a.pub.order, func(x *subscriberPatterns) bool { return x == s })
	(&Watch{agent: a, id: s.watch}).Cancel()
	a.publishInterests()
}

func (a *Agent) notifySubscription(ev SubscriptionEvent) {
	for _, fn := range a.pub.onSubscription.list {
		a.guard("subscription handler", func() { (*fn)(ev) })
	}
}
