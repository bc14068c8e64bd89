package service_test

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/service"
)

// rep is a received report reduced to what tests compare.
type rep struct {
	Pub     service.Address
	Subject string
	Pattern string
	Value   string
}

func (r rep) String() string { return r.Subject + "[" + r.Pattern + "]=" + r.Value }

func toRep(r service.Report) rep {
	v, err := r.Value()
	if err != nil {
		return rep{Pub: r.Publisher, Subject: r.Subject, Pattern: r.Pattern, Value: "undecodable: " + err.Error()}
	}
	return rep{Pub: r.Publisher, Subject: r.Subject, Pattern: r.Pattern, Value: fmt.Sprint(v)}
}

// reportSink returns a report handler that sends reports to a channel.
func reportSink() (chan service.Report, func(service.Report)) {
	ch := make(chan service.Report, 2000)
	return ch, func(r service.Report) { ch <- r }
}

// wantReports takes len(want) reports and compares subject, pattern and
// value, in order.
func wantReports(t testing.TB, ch <-chan service.Report, want ...string) {
	t.Helper()
	got := make([]string, 0, len(want))
	for _, r := range recvN(t, ch, len(want), "report") {
		got = append(got, toRep(r).String())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("reports:\n got %v\nwant %v", got, want)
	}
}

// subEvents returns an OnSubscription handler that sends to a channel.
func subEvents() (chan service.SubscriptionEvent, func(service.SubscriptionEvent)) {
	ch := make(chan service.SubscriptionEvent, 100)
	return ch, func(ev service.SubscriptionEvent) { ch <- ev }
}

// startPublisher starts a probe that tells subscription events.
func startPublisher(t testing.TB, rt *service.Runtime, name string, opts ...service.Option) (*probe, chan service.SubscriptionEvent) {
	t.Helper()
	events, fn := subEvents()
	p := startProbe(t, rt, name, func(a *service.Agent) { a.OnSubscription(fn) }, opts...)
	return p, events
}

func wantSubEvent(t testing.TB, ch <-chan service.SubscriptionEvent, want service.SubscriptionEvent) {
	t.Helper()
	if got := recv(t, ch, "subscription event"); got != want {
		t.Fatalf("subscription event = %+v, want %+v", got, want)
	}
}

// subscribe subscribes inside a probe and fails the test on error.
func subscribe(t testing.TB, p *probe, to service.Target, pattern string, fn func(service.Report), opts ...service.SubscribeOption) *service.Subscription {
	t.Helper()
	var s *service.Subscription
	var err error
	p.Do(func(a *service.Agent) { s, err = a.Subscribe(to, pattern, fn, opts...) })
	if err != nil {
		t.Fatalf("subscribe %v %q: %v", to, pattern, err)
	}
	return s
}

// Rules 18, 19, 21: a subscription by name attaches to publishers that
// appear later, is told when they go, and attaches to their successors.
func TestSubscribeByNameAttachesToLaterPublishers(t *testing.T) {
	rt := newRuntime(t)
	sub := startProbe(t, rt, "", nil)
	reports, fn := reportSink()
	pubEvents := make(chan service.PublisherEvent, 10)
	s := subscribe(t, sub, service.Name("ticker"), "prices.*", fn,
		service.OnPublisher(func(ev service.PublisherEvent) { pubEvents <- ev }))

	pub1, subs1 := startPublisher(t, rt, "ticker")
	ev := recv(t, pubEvents, "publisher event")
	if !ev.Available || ev.Publisher.Address != pub1.Addr || ev.Publisher.Name != "ticker" {
		t.Fatalf("publisher event = %+v", ev)
	}
	wantSubEvent(t, subs1, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: "prices.*", Subscribed: true})
	pub1.Do(func(a *service.Agent) {
		if got := a.Subscribers(); len(got) != 1 || !slices.Equal(got[sub.Addr], []string{"prices.*"}) {
			t.Errorf("Subscribers() = %v", got)
		}
		if err := a.Publish("prices.ibm", 101); err != nil {
			t.Error(err)
		}
		_ = a.Publish("volumes.ibm", 5) // no matching pattern
		_ = a.Publish("prices.nyse.ibm", 6)
		_ = a.Publish("prices.msft", 102)
	})
	r := recv(t, reports, "report")
	if r.Publisher != pub1.Addr || r.PublisherName != "ticker" || r.Subject != "prices.ibm" || r.Pattern != "prices.*" {
		t.Fatalf("report = %+v", r)
	}
	if v := decode[int](t, r.Payload); v != 101 {
		t.Fatalf("report value = %d", v)
	}
	wantReports(t, reports, "prices.msft[prices.*]=102")

	stop(t, rt, pub1.Addr)
	if ev := recv(t, pubEvents, "publisher event"); ev.Available || ev.Publisher.Address != pub1.Addr {
		t.Fatalf("withdrawal event = %+v", ev)
	}
	sub.Do(func(*service.Agent) {
		if p := s.Publishers(); len(p) != 0 {
			t.Errorf("Publishers() after the withdrawal = %v", p)
		}
	})

	pub2, subs2 := startPublisher(t, rt, "ticker")
	if ev := recv(t, pubEvents, "publisher event"); !ev.Available || ev.Publisher.Address != pub2.Addr {
		t.Fatalf("second publisher event = %+v", ev)
	}
	wantSubEvent(t, subs2, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: "prices.*", Subscribed: true})
	pub2.Do(func(a *service.Agent) { _ = a.Publish("prices.ibm", 103) })
	r = recv(t, reports, "report")
	if r.Publisher != pub2.Addr || decode[int](t, r.Payload) != 103 {
		t.Fatalf("report from the second publisher = %+v", toRep(r))
	}
	sub.Do(func(*service.Agent) {
		if p := s.Publishers(); !slices.Equal(p, []service.Address{pub2.Addr}) {
			t.Errorf("Publishers() = %v", p)
		}
	})
}

// Rule 19: a subscription by address listens to that one service only.
func TestSubscribeByAddress(t *testing.T) {
	rt := newRuntime(t)
	p1, subs1 := startPublisher(t, rt, "feed")
	p2, _ := startPublisher(t, rt, "feed")
	sub := startProbe(t, rt, "", nil)
	reports, fn := reportSink()
	subscribe(t, sub, p1.Addr, ">", fn)
	wantSubEvent(t, subs1, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: ">", Subscribed: true})
	p2.Do(func(a *service.Agent) {
		if s := a.Subscribers(); len(s) != 0 {
			t.Errorf("the other service of the name has subscribers %v", s)
		}
		_ = a.Publish("x", "from p2")
	})
	p1.Do(func(a *service.Agent) { _ = a.Publish("x", "from p1") })
	r := recv(t, reports, "report")
	if r.Publisher != p1.Addr || toRep(r).Value != "from p1" {
		t.Fatalf("report = %+v", toRep(r))
	}
	sub.Do(func(*service.Agent) {})
	empty(t, reports, "report")
}

// Rule 19: a subscription by group follows members as they join and leave.
func TestSubscribeByGroup(t *testing.T) {
	rt := newRuntime(t)
	sub := startProbe(t, rt, "", nil)
	reports, fn := reportSink()
	pubEvents := make(chan service.PublisherEvent, 10)
	subscribe(t, sub, service.Group("quotes"), "*", fn,
		service.OnPublisher(func(ev service.PublisherEvent) { pubEvents <- ev }))

	pa, subsA := startPublisher(t, rt, "pa")
	pa.Do(func(a *service.Agent) { a.JoinGroup("quotes") })
	if ev := recv(t, pubEvents, "publisher event"); !ev.Available || ev.Publisher.Address != pa.Addr {
		t.Fatalf("join event = %+v", ev)
	}
	wantSubEvent(t, subsA, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: "*", Subscribed: true})
	pa.Do(func(a *service.Agent) { _ = a.Publish("ibm", 1) })
	wantReports(t, reports, "ibm[*]=1")

	pb, subsB := startPublisher(t, rt, "pb", service.Groups("quotes"))
	wantSubEvent(t, subsB, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: "*", Subscribed: true})
	if ev := recv(t, pubEvents, "publisher event"); !ev.Available || ev.Publisher.Address != pb.Addr {
		t.Fatalf("second member event = %+v", ev)
	}

	pa.Do(func(a *service.Agent) { a.LeaveGroup("quotes") })
	if ev := recv(t, pubEvents, "publisher event"); ev.Available || ev.Publisher.Address != pa.Addr {
		t.Fatalf("leave event = %+v", ev)
	}
	// The member that left is told the subscriber unsubscribed.
	wantSubEvent(t, subsA, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: "*", Subscribed: false})
	pa.Do(func(a *service.Agent) {
		if s := a.Subscribers(); len(s) != 0 {
			t.Errorf("subscribers after leaving = %v", s)
		}
		_ = a.Publish("ibm", 2)
	})
	pb.Do(func(a *service.Agent) { _ = a.Publish("msft", 3) })
	wantReports(t, reports, "msft[*]=3")
	sub.Do(func(*service.Agent) {})
	empty(t, reports, "report")
}

// Rule 19's examples, end to end, with one delivery per matching pattern
// in subscription order.
func TestPatternsDeliverOncePerMatchingPattern(t *testing.T) {
	rt := newRuntime(t)
	pub, subs := startPublisher(t, rt, "mkt")
	sub := startProbe(t, rt, "", nil)
	reports, fn := reportSink()
	patterns := []string{"prices.*", "prices.>", "pri*.ibm", "pr?ces.ibm", "*", ">", "end"}
	sub.Do(func(a *service.Agent) {
		for _, p := range patterns {
			if _, err := a.Subscribe(service.Name("mkt"), p, fn); err != nil {
				t.Errorf("subscribe %q: %v", p, err)
			}
		}
	})
	for _, p := range patterns {
		wantSubEvent(t, subs, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: p, Subscribed: true})
	}
	pub.Do(func(a *service.Agent) {
		for i, s := range []string{"prices.ibm", "prices.nyse.ibm", "prices", "ibm", "quotes.ibm", "end", "fin"} {
			_ = a.Publish(s, i)
		}
	})
	wantReports(t, reports,
		"prices.ibm[prices.*]=0", "prices.ibm[prices.>]=0", "prices.ibm[pri*.ibm]=0", "prices.ibm[pr?ces.ibm]=0", "prices.ibm[>]=0",
		"prices.nyse.ibm[prices.>]=1", "prices.nyse.ibm[>]=1",
		"prices[*]=2", "prices[>]=2",
		"ibm[*]=3", "ibm[>]=3",
		"quotes.ibm[>]=4",
		"end[*]=5", "end[>]=5", "end[end]=5",
		"fin[*]=6", "fin[>]=6",
	)
	sub.Do(func(*service.Agent) {})
	empty(t, reports, "report")
}

// Scenario 17: one report matching two patterns arrives twice, each
// with the pattern it matched.
func TestReportMatchingTwoPatternsDeliveredTwice(t *testing.T) {
	rt := newRuntime(t)
	pub, subs := startPublisher(t, rt, "sys")
	sub := startProbe(t, rt, "", nil)
	byPattern := map[string]chan service.Report{}
	for _, p := range []string{"system.*", "*.time", "sys?em.time"} {
		ch, fn := reportSink()
		byPattern[p] = ch
		subscribe(t, sub, pub.Addr, p, fn)
		wantSubEvent(t, subs, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: p, Subscribed: true})
	}
	pub.Do(func(a *service.Agent) {
		_ = a.Publish("system", 0)
		_ = a.Publish("system.statistics.users", 1)
		_ = a.Publish("system.time", 2)
		_ = a.Publish("system.date", 3)
	})
	wantReports(t, byPattern["system.*"], "system.time[system.*]=2", "system.date[system.*]=3")
	wantReports(t, byPattern["*.time"], "system.time[*.time]=2")
	wantReports(t, byPattern["sys?em.time"], "system.time[sys?em.time]=2")
	sub.Do(func(*service.Agent) {})
	for p, ch := range byPattern {
		empty(t, ch, "report for "+p)
	}
}

// Rule 20: kept reports go to new subscribers before live ones; a report
// without a lifetime is not kept and drops the one kept for its subject.
func TestRetainedReports(t *testing.T) {
	rt := newRuntime(t)
	pub, subs := startPublisher(t, rt, "state")
	pub.Do(func(a *service.Agent) {
		_ = a.PublishRetained("init", "i1", service.Forever)
		_ = a.PublishRetained("status", "s1", time.Hour)
		_ = a.PublishRetained("tick", 1, 0) // lifetime 0: not kept
		_ = a.Publish("other", 1)
		if k := a.KeptReports(); !slices.Equal(k, []string{"init", "status"}) {
			t.Errorf("KeptReports() = %v", k)
		}
	})

	sub1 := startProbe(t, rt, "", nil)
	r1, fn1 := reportSink()
	subscribe(t, sub1, pub.Addr, ">", fn1)
	recv(t, subs, "subscription")
	pub.Do(func(a *service.Agent) { _ = a.Publish("tick", 2) })
	wantReports(t, r1, "init[>]=i1", "status[>]=s1", "tick[>]=2")

	// Publishing without a lifetime drops the kept report; a new one
	// replaces the old value.
	pub.Do(func(a *service.Agent) {
		_ = a.Publish("init", "i2")
		_ = a.PublishRetained("status", "s2", service.Forever)
		if k := a.KeptReports(); !slices.Equal(k, []string{"status"}) {
			t.Errorf("KeptReports() = %v", k)
		}
	})
	wantReports(t, r1, "init[>]=i2", "status[>]=s2")

	sub2 := startProbe(t, rt, "", nil)
	r2, fn2 := reportSink()
	subscribe(t, sub2, pub.Addr, "*", fn2)
	recv(t, subs, "subscription")
	pub.Do(func(a *service.Agent) { _ = a.Publish("marker", 0) })
	wantReports(t, r2, "status[*]=s2", "marker[*]=0")

	// A kept report replayed only to the patterns it matches.
	sub3 := startProbe(t, rt, "", nil)
	r3, fn3 := reportSink()
	subscribe(t, sub3, pub.Addr, "x.*", fn3)
	recv(t, subs, "subscription")
	pub.Do(func(a *service.Agent) { _ = a.Publish("x.marker", 0) })
	wantReports(t, r3, "x.marker[x.*]=0")
}

// Rule 20: expired kept reports are not replayed.
func TestExpiredReportsNotReplayed(t *testing.T) {
	rt := newRuntime(t)
	pub, subs := startPublisher(t, rt, "state")
	pub.Do(func(a *service.Agent) {
		_ = a.PublishRetained("short", "s", 5*time.Millisecond)
		_ = a.PublishRetained("long", "l", service.Forever)
	})
	waitFor(t, waitTimeout, "the short report to expire", func() bool {
		var k []string
		pub.Do(func(a *service.Agent) { k = a.KeptReports() })
		return slices.Equal(k, []string{"long"})
	})
	sub := startProbe(t, rt, "", nil)
	reports, fn := reportSink()
	subscribe(t, sub, pub.Addr, ">", fn)
	recv(t, subs, "subscription")
	pub.Do(func(a *service.Agent) { _ = a.Publish("marker", 0) })
	wantReports(t, reports, "long[>]=l", "marker[>]=0")
}

// Rule 30: expiring kept reports by pattern and age, and purging.
func TestExpireAndPurgeReports(t *testing.T) {
	rt := newRuntime(t)
	pub := startProbe(t, rt, "state", nil)
	kept := func() []string {
		var k []string
		pub.Do(func(a *service.Agent) { k = a.KeptReports() })
		return k
	}
	fill := func() {
		pub.Do(func(a *service.Agent) {
			for _, s := range []string{"init", "info", "status", "sys.a", "sys.b"} {
				_ = a.PublishRetained(s, s, service.Forever)
			}
		})
	}
	fill()
	pub.Do(func(a *service.Agent) {
		if err := a.ExpireReports("in*", time.Hour); err != nil {
			t.Error(err)
		}
	})
	if k := kept(); !slices.Equal(k, []string{"info", "init", "status", "sys.a", "sys.b"}) {
		t.Fatalf("after expiring only old ones: %v", k)
	}
	pub.Do(func(a *service.Agent) {
		_ = a.ExpireReports("in*", 0)
	})
	if k := kept(); !slices.Equal(k, []string{"status", "sys.a", "sys.b"}) {
		t.Fatalf("after ExpireReports(in*): %v", k)
	}
	pub.Do(func(a *service.Agent) { _ = a.ExpireReports("sys.>", 0) })
	if k := kept(); !slices.Equal(k, []string{"status"}) {
		t.Fatalf("after ExpireReports(sys.>): %v", k)
	}
	pub.Do(func(a *service.Agent) {
		if err := a.ExpireReports("a.>.b", 0); err == nil {
			t.Error("ExpireReports with a bad pattern did not fail")
		}
		a.ExpireAllReports(time.Hour)
	})
	if k := kept(); !slices.Equal(k, []string{"status"}) {
		t.Fatalf("after ExpireAllReports(1h): %v", k)
	}
	pub.Do(func(a *service.Agent) { a.ExpireAllReports(0) })
	if k := kept(); len(k) != 0 {
		t.Fatalf("after ExpireAllReports(0): %v", k)
	}
	fill()
	pub.Do(func(a *service.Agent) { a.PurgeReports() })
	if k := kept(); len(k) != 0 {
		t.Fatalf("after PurgeReports: %v", k)
	}

	// By age: only reports older than the age go. The second report is
	// published by a timer well after the first, and the expiry runs
	// right after it, in the same handler.
	results := make(chan [2][]string, 1)
	pub.Do(func(a *service.Agent) {
		_ = a.PublishRetained("old.x", 1, service.Forever)
		_ = a.PublishRetained("old.y", 1, service.Forever)
		a.After(150*time.Millisecond, func() {
			_ = a.PublishRetained("new.x", 2, service.Forever)
			_ = a.PublishRetained("new.y", 2, service.Forever)
			_ = a.ExpireReports("*.x", 75*time.Millisecond)
			afterPattern := a.KeptReports()
			a.ExpireAllReports(75 * time.Millisecond)
			results <- [2][]string{afterPattern, a.KeptReports()}
		})
	})
	r := recv(t, results, "expiry by age")
	if !slices.Equal(r[0], []string{"new.x", "new.y", "old.y"}) {
		t.Fatalf("after ExpireReports(*.x, 75ms): %v", r[0])
	}
	if !slices.Equal(r[1], []string{"new.x", "new.y"}) {
		t.Fatalf("after ExpireAllReports(75ms): %v", r[1])
	}
}

// Rule 22: reports from one publisher arrive in the order published.
func TestReportsArriveInPublishOrderPerPublisher(t *testing.T) {
	rt := newRuntime(t)
	p1, subs1 := startPublisher(t, rt, "seq")
	p2, subs2 := startPublisher(t, rt, "seq")
	sub := startProbe(t, rt, "", nil)
	reports, fn := reportSink()
	subscribe(t, sub, service.Name("seq"), "n.>", fn)
	recv(t, subs1, "subscription")
	recv(t, subs2, "subscription")
	const n = 500
	var wg sync.WaitGroup
	for _, p := range []*probe{p1, p2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Do(func(a *service.Agent) {
				for i := range n {
					_ = a.Publish(fmt.Sprintf("n.%d", i%7), i)
				}
			})
		}()
	}
	wg.Wait()
	next := map[service.Address]int{}
	for _, r := range recvN(t, reports, 2*n, "report") {
		v := decode[int](t, r.Payload)
		if v != next[r.Publisher] {
			t.Fatalf("report %d from %v arrived when %d was expected", v, r.Publisher, next[r.Publisher])
		}
		next[r.Publisher]++
	}
	if next[p1.Addr] != n || next[p2.Addr] != n {
		t.Fatalf("counts %v", next)
	}
}

// Rule 28: a publisher hears of subscriptions and unsubscriptions, by
// Cancel and by the subscriber stopping.
func TestOnSubscriptionEvents(t *testing.T) {
	rt := newRuntime(t)
	pub, subs := startPublisher(t, rt, "pub")
	sub := startProbe(t, rt, "", nil)
	_, fn := reportSink()
	sa := subscribe(t, sub, pub.Addr, "a.*", fn)
	subscribe(t, sub, service.Name("pub"), "b.*", fn)
	wantSubEvent(t, subs, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: "a.*", Subscribed: true})
	wantSubEvent(t, subs, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: "b.*", Subscribed: true})
	pub.Do(func(a *service.Agent) {
		got := a.Subscribers()
		if len(got) != 1 || !slices.Equal(got[sub.Addr], []string{"a.*", "b.*"}) {
			t.Errorf("Subscribers() = %v", got)
		}
	})
	sub.Do(func(*service.Agent) {
		sa.Cancel()
		sa.Cancel() // twice is harmless
	})
	wantSubEvent(t, subs, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: "a.*", Subscribed: false})
	stop(t, rt, sub.Addr)
	wantSubEvent(t, subs, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: "b.*", Subscribed: false})
	pub.Do(func(a *service.Agent) {
		if got := a.Subscribers(); len(got) != 0 {
			t.Errorf("Subscribers() after the subscriber stopped = %v", got)
		}
	})
	empty(t, subs, "subscription event")
}

// Two subscriptions of one subscriber with the same pattern share one
// subscription at the publisher; both get each report; the publisher
// hears of the unsubscription only when the last one is cancelled.
func TestSharedPatternSubscriptions(t *testing.T) {
	rt := newRuntime(t)
	pub, subs := startPublisher(t, rt, "pub")
	sub := startProbe(t, rt, "", nil)
	byName, fnName := reportSink()
	byAddr, fnAddr := reportSink()
	s1 := subscribe(t, sub, service.Name("pub"), "x.*", fnName)
	s2 := subscribe(t, sub, pub.Addr, "x.*", fnAddr)
	wantSubEvent(t, subs, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: "x.*", Subscribed: true})
	// The publisher heard of the first; wait for the second to attach.
	waitFor(t, waitTimeout, "both subscriptions to attach", func() bool {
		var n1, n2 int
		sub.Do(func(*service.Agent) { n1, n2 = len(s1.Publishers()), len(s2.Publishers()) })
		return n1 == 1 && n2 == 1
	})
	pub.Do(func(a *service.Agent) { _ = a.Publish("x.1", 1) })
	wantReports(t, byName, "x.1[x.*]=1")
	wantReports(t, byAddr, "x.1[x.*]=1")

	sub.Do(func(*service.Agent) { s1.Cancel() })
	subscribe(t, sub, pub.Addr, "marker", fnAddr)
	// The next event is the marker: cancelling one of two said nothing.
	wantSubEvent(t, subs, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: "marker", Subscribed: true})
	pub.Do(func(a *service.Agent) { _ = a.Publish("x.2", 2) })
	wantReports(t, byAddr, "x.2[x.*]=2")
	sub.Do(func(*service.Agent) {})
	empty(t, byName, "report after Cancel")

	sub.Do(func(*service.Agent) { s2.Cancel() })
	wantSubEvent(t, subs, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: "x.*", Subscribed: false})
}

// A report handler that cancels another subscription of the same
// pattern: the cancelled one no longer receives that report or later
// ones, the service keeps running, and the first goes on receiving.
func TestHandlerCancelsSiblingSubscription(t *testing.T) {
	var logs logSink
	rt := newRuntime(t, service.Config{Logger: logs.logger()})
	pub, subs := startPublisher(t, rt, "pub")
	// A panic in delivery would stop the subscriber, and the reports
	// after it would not arrive.
	sub := startProbe(t, rt, "", nil, service.OnPanic(service.StopOnPanic))
	first, fnFirst := reportSink()
	second, fnSecond := reportSink()
	var s2 *service.Subscription
	s1 := subscribe(t, sub, pub.Addr, "x.*", func(r service.Report) {
		s2.Cancel()
		fnFirst(r)
	})
	s2 = subscribe(t, sub, pub.Addr, "x.*", fnSecond)
	wantSubEvent(t, subs, service.SubscriptionEvent{Subscriber: sub.Addr, Pattern: "x.*", Subscribed: true})
	waitFor(t, waitTimeout, "both subscriptions to attach", func() bool {
		var n1, n2 int
		sub.Do(func(*service.Agent) { n1, n2 = len(s1.Publishers()), len(s2.Publishers()) })
		return n1 == 1 && n2 == 1
	})
	pub.Do(func(a *service.Agent) { _ = a.Publish("x.1", 1); _ = a.Publish("x.2", 2) })
	wantReports(t, first, "x.1[x.*]=1", "x.2[x.*]=2")
	sub.Do(func(*service.Agent) {})
	empty(t, second, "report to a subscription its sibling's handler cancelled")
	if errs := logs.find(slog.LevelError, ""); len(errs) > 0 {
		t.Fatalf("errors logged: %+v", errs)
	}
}

// Rule 29: directed reports reach one subscriber only, through a
// matching subscription or AcceptReports.
func TestSendReportDirected(t *testing.T) {
	rt := newRuntime(t)
	// The publisher greets each subscriber of system.* with the time.
	pub := startProbe(t, rt, "dpub", func(a *service.Agent) {
		a.OnSubscription(func(ev service.SubscriptionEvent) {
			if ev.Subscribed && ev.Pattern == "system.*" {
				if err := a.SendReport(ev.Subscriber, "system.time", "noon"); err != nil {
					t.Errorf("SendReport: %v", err)
				}
			}
		})
	})
	other := startProbe(t, rt, "", nil)
	otherReports, otherFn := reportSink()
	subscribe(t, other, pub.Addr, "other.*", otherFn)
	subscribers := func() int {
		n := 0
		pub.Do(func(a *service.Agent) { n = len(a.Subscribers()) })
		return n
	}
	waitFor(t, waitTimeout, "the subscription to reach the publisher", func() bool { return subscribers() == 1 })

	s1 := startProbe(t, rt, "", nil)
	r1, fn1 := reportSink()
	subscribe(t, s1, service.Name("dpub"), "system.*", fn1)
	r := recv(t, r1, "greeting")
	if r.Subject != "system.time" || r.Pattern != "system.*" || r.PublisherName != "dpub" || toRep(r).Value != "noon" {
		t.Fatalf("greeting = %+v", toRep(r))
	}
	pub.Do(func(a *service.Agent) { _ = a.Publish("other.end", 1) })
	wantReports(t, otherReports, "other.end[other.*]=1") // no greeting before it

	// AcceptReports by name and by address, for reports no pattern matches.
	s3 := startProbe(t, rt, "", nil)
	accepted := make(chan service.Report, 10)
	r3, fn3 := reportSink()
	s3.Do(func(a *service.Agent) {
		a.AcceptReports(service.Name("dpub"), "state", func(r service.Report) { accepted <- r })
		a.AcceptReports(pub.Addr, "state2", func(r service.Report) { accepted <- r })
	})
	subscribe(t, s3, pub.Addr, "other.*", fn3)
	waitFor(t, waitTimeout, "the subscription to reach the publisher", func() bool { return subscribers() == 3 })
	pub.Do(func(a *service.Agent) {
		_ = a.SendReport(s3.Addr, "state", "one")
		_ = a.SendReport(s3.Addr, "unknown", "dropped")
		_ = a.SendReport(s3.Addr, "state2", "two")
		_ = a.SendReport(s3.Addr, "other.direct", "three")
		if err := a.SendReport(service.Address{Process: rt.ProcessID(), ID: 999}, "state", 0); err == nil {
			t.Error("SendReport to a non-subscriber did not fail")
		}
	})
	a1 := recv(t, accepted, "accepted report")
	a2 := recv(t, accepted, "accepted report")
	if a1.Subject != "state" || a1.Pattern != "" || a1.PublisherName != "dpub" || a1.Publisher != pub.Addr || toRep(a1).Value != "one" {
		t.Fatalf("accepted by name = %+v", toRep(a1))
	}
	if a2.Subject != "state2" || toRep(a2).Value != "two" {
		t.Fatalf("accepted by address = %+v", toRep(a2))
	}
	wantReports(t, r3, "other.direct[other.*]=three")
	for _, p := range []*probe{s3, s1, other} {
		p.Do(func(*service.Agent) {}) // reports sent before this have been handled
	}
	empty(t, accepted, "report nobody accepts")
	empty(t, otherReports, "report sent to another subscriber")
	empty(t, r1, "report sent to another subscriber")
}

// Subscribe refuses bad patterns and targets.
func TestSubscribeRejectsBadInput(t *testing.T) {
	rt := newRuntime(t)
	sub := startProbe(t, rt, "", nil)
	sub.Do(func(a *service.Agent) {
		for _, p := range []string{"", "a.>.b", "a>", "a..*"} {
			if _, err := a.Subscribe(service.Name("x"), p, func(service.Report) {}); err == nil {
				t.Errorf("Subscribe accepted pattern %q", p)
			}
		}
		if _, err := a.Subscribe(service.AllServices, ">", func(service.Report) {}); err == nil {
			t.Error("Subscribe accepted AllServices")
		}
		if err := a.Publish("", 1); err == nil {
			t.Error("Publish accepted an empty subject")
		}
		if err := a.Publish("x", make(chan int)); err == nil || !strings.Contains(err.Error(), "publish x") {
			t.Errorf("Publish of an unencodable value: %v", err)
		}
	})
}

// Rules 20 and 28: kept reports reach a new subscriber before anything
// the publisher sends it from OnSubscription, so the fresh state is not
// overwritten by an older kept one.
func TestKeptReportsBeforeReportsFromOnSubscription(t *testing.T) {
	rt := newRuntime(t)
	start(t, rt, "state", func(a *service.Agent) error {
		_ = a.PublishRetained("state", "old", service.Forever)
		a.OnSubscription(func(ev service.SubscriptionEvent) {
			if ev.Subscribed {
				_ = a.SendReport(ev.Subscriber, "state", "directed")
				_ = a.PublishRetained("state", "new", service.Forever)
			}
		})
		return nil
	})
	sub := startProbe(t, rt, "", nil)
	reports, fn := reportSink()
	subscribe(t, sub, service.Name("state"), "state", fn)
	wantReports(t, reports, "state[state]=old", "state[state]=directed", "state[state]=new")
}

// TestCallbacksAddAndCancel checks that registering a callback reads the
// same everywhere: OnSubscription and AcceptReports add (every one that
// matches runs, in order), and Cancel removes one.
func TestCallbacksAddAndCancel(t *testing.T) {
	rt := newRuntime(t)
	calls := make(chan string, 20)
	var second, directed *service.Handler
	pub := startProbe(t, rt, "pub", func(a *service.Agent) {
		a.OnSubscription(func(service.SubscriptionEvent) { calls <- "first" })
		second = a.OnSubscription(func(service.SubscriptionEvent) { calls <- "second" })
	})
	sub := startProbe(t, rt, "sub", func(a *service.Agent) {
		a.AcceptReports(service.Name("pub"), "hi", func(service.Report) { calls <- "accept by name" })
		directed = a.AcceptReports(service.Name("pub"), "hi", func(service.Report) { calls <- "accept again" })
	})
	sub.Do(func(a *service.Agent) {
		if _, err := a.Subscribe(service.Name("pub"), "one", func(service.Report) {}); err != nil {
			t.Error(err)
		}
	})
	if got := recvN(t, calls, 2, "subscription callbacks"); got[0] != "first" || got[1] != "second" {
		t.Fatalf("callbacks ran %v, want first then second", got)
	}
	pub.Do(func(a *service.Agent) {
		second.Cancel()
		second.Cancel() // again: nothing
		if err := a.SendReport(sub.Addr, "hi", 1); err != nil {
			t.Error(err)
		}
	})
	if got := recvN(t, calls, 2, "directed report callbacks"); got[0] != "accept by name" || got[1] != "accept again" {
		t.Fatalf("callbacks ran %v", got)
	}
	sub.Do(func(a *service.Agent) {
		directed.Cancel()
		if _, err := a.Subscribe(service.Name("pub"), "two", func(service.Report) {}); err != nil {
			t.Error(err)
		}
	})
	if got := recv(t, calls, "subscription callback"); got != "first" {
		t.Fatalf("after Cancel, %q ran", got)
	}
	pub.Do(func(a *service.Agent) { _ = a.SendReport(sub.Addr, "hi", 2) })
	if got := recv(t, calls, "directed report callback"); got != "accept by name" {
		t.Fatalf("after Cancel, %q ran", got)
	}
	sub.Do(func(*service.Agent) {})
	empty(t, calls, "callback")
}
