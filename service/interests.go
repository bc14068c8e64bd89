package service

// What a service listens to, published for the console.

import (
	"slices"

	"github.com/netsvc-go/netsvc/actors/registry"
)

// publishInterests refreshes the agent's snapshot.
func (a *Agent) publishInterests() {
	in := &registry.Interest{}
	name := a.ref.Name()
	for _, s := range a.sub.subs {
		pubs := make([]Address, 0, len(s.publishers))
		for p := range s.publishers {
			pubs = append(pubs, p)
		}
		slices.SortFunc(pubs, registry.CompareAddress)
		in.Subscriptions = append(in.Subscriptions, registry.SubscriptionInfo{Subscriber: a.ref.Addr(), SubscriberName: name,
			Target: s.target.String(), Pattern: s.pattern, Publishers: pubs})
	}
	for _, s := range a.pub.order {
		pats := make([]string, len(s.patterns))
		for i, p := range s.patterns {
			pats[i] = p.text
		}
		in.Subscribers = append(in.Subscribers, registry.SubscriberInfo{Publisher: a.ref.Addr(), PublisherName: name, Subscriber: s.addr, Patterns: pats})
	}
	ids := make([]uint64, 0, len(a.watchTargets))
	for id := range a.watchTargets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		in.Watches = append(in.Watches, registry.WatchInfo{Watcher: a.ref.Addr(), WatcherName: name, Target: a.watchTargets[id]})
	}
	a.ref.SetInterest(in)
}
