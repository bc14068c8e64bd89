package cluster

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/cluster/clustertest"
)

// seesOnly checks that each node sees exactly the others of its group.
func seesOnly(groups ...[]*testNode) error {
	for _, g := range groups {
		if err := allSee(g...); err != nil {
			return err
		}
	}
	return nil
}

// A cut between {a, b} and {c, d, e} (a started without seeds, the others
// through a chain of seeds, as README starts a cluster) heals once the
// network is back: each side declared the other dead and neither is
// alone, so only reconnecting brings them together. Each member that
// comes back is reported up again under its own name (it is the same
// process), by every member of the other side, within a few reconnect
// intervals of the heal. The cut is held past memberlist's
// GossipToTheDeadTime, so the dead have been forgotten by memberlist too.
func TestReconnectHealsSplit(t *testing.T) {
	pn := clustertest.NewNetwork()
	nodes := startChain(t, pn, "split", 5)
	a, b, c, d, e := nodes[0], nodes[1], nodes[2], nodes[3], nodes[4]
	partition(t, pn, 7*time.Second, []*testNode{a, b}, []*testNode{c, d, e})
}

// A cut shorter than GossipToTheDeadTime heals too: the dead are still
// gossiped to, but at the same incarnation, which memberlist ignores,
// until a join tells each side that it was declared dead.
func TestReconnectHealsShortSplit(t *testing.T) {
	pn := clustertest.NewNetwork()
	nodes := startChain(t, pn, "blip", 5)
	a, b, c, d, e := nodes[0], nodes[1], nodes[2], nodes[3], nodes[4]
	partition(t, pn, 2*time.Second, []*testNode{a, b}, []*testNode{c, d, e})
}

// The first member, started without seeds and cut off alone, rejoins the
// others by itself: it remembers the members it saw fail. (The others
// reconnect too, by default; here they do not, so the heal is the first
// member's doing: none of them is alone, so none rejoins its seeds.)
func TestReconnectFirstMemberAlone(t *testing.T) {
	pn := clustertest.NewNetwork()
	nodes := startChain(t, pn, "first", 4, func(i int, cfg *Config) {
		if i > 0 {
			cfg.ReconnectInterval = -1
		}
	})
	partition(t, pn, 7*time.Second, nodes[:1], nodes[1:])
	if got := nodes[0].rejoins.Load(); got == 0 {
		t.Errorf("the first member rejoined nobody (%d joins tried)", nodes[0].rejoinAttempts.Load())
	}
}

// startChain starts n members on pn: the first without seeds, each next
// one joining the one before, and waits until all see all. tweak, when
// given, changes the config of member i.
func startChain(t *testing.T, pn *clustertest.Network, prefix string, n int, tweak ...func(i int, cfg *Config)) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	for i := range n {
		var join []string
		if i > 0 {
			join = []string{nodes[i-1].LocalAddr()}
		}
		cfg := partitionConfig(pn, fmt.Sprintf("%s-%c", prefix, 'a'+i), join...)
		for _, f := range tweak {
			f(i, &cfg)
		}
		nodes[i] = start(t, cfg)
	}
	checkFor(t, settle, 5*time.Millisecond, func() error { return allSee(nodes...) })
	return nodes
}

// partition cuts the network between the two sides for hold, checks
// that each side then sees only itself (with the other side reported
// dead), heals it, and checks that every member is reported up again by
// the other side within healBound.
func partition(t *testing.T, pn *clustertest.Network, hold time.Duration, one, two []*testNode) {
	t.Helper()
	const healBound = 5 * time.Second // 1 s reconnect interval; measured 0.15–1.7 s
	all := append(slices.Clone(one), two...)
	ups := make(map[*testNode]map[string]int) // MemberUp counts before the cut
	for _, n := range all {
		ups[n] = map[string]int{}
		for _, o := range all {
			ups[n][o.Name()] = n.rec.count(isUp(o.Name()))
		}
	}

	cut := time.Now()
	pn.Cut(addrs(one), addrs(two))
	checkFor(t, settle, 10*time.Millisecond, func() error {
		if err := seesOnly(one, two); err != nil {
			return err
		}
		for _, pair := range [][2][]*testNode{{one, two}, {two, one}} {
			for _, n := range pair[0] {
				for _, o := range pair[1] {
					if _, reason, err := n.downAt(o.Name()); err != nil || reason != ReasonDead {
						return fmt.Errorf("%s: %s not reported dead (%q, %v)", n.Name(), o.Name(), reason, err)
					}
				}
			}
		}
		return nil
	})
	t.Logf("cut: each side sees only itself after %v", time.Since(cut).Round(time.Millisecond))
	if rest := hold - time.Since(cut); rest > 0 {
		time.Sleep(rest) // the length of the cut, not a synchronisation
	}
	if err := seesOnly(one, two); err != nil {
		t.Fatalf("the cut did not hold: %v", err)
	}

	healed := time.Now()
	pn.Heal()
	var took time.Duration
	checkFor(t, healBound, 5*time.Millisecond, func() error {
		if err := allSee(all...); err != nil {
			return err
		}
		took = time.Since(healed)
		return nil
	})
	t.Logf("heal after a %v cut: every member sees all %d again after %v", hold, len(all), took.Round(time.Millisecond))

	// The same members came back (no new names), each reported up anew
	// by the members of the other side, after the heal.
	for _, pair := range [][2][]*testNode{{one, two}, {two, one}} {
		for _, n := range pair[0] {
			for _, o := range pair[1] {
				e, _ := n.rec.last(o.Name())
				if !e.up || e.at.Before(healed) {
					t.Errorf("%s: last event about %s is up=%v at %v, want a MemberUp after the heal", n.Name(), o.Name(), e.up, e.at.Sub(healed))
				}
				if got := n.rec.count(isUp(o.Name())); got != ups[n][o.Name()]+1 {
					t.Errorf("%s: %d MemberUp for %s, want %d", n.Name(), got, o.Name(), ups[n][o.Name()]+1)
				}
			}
		}
	}
	var rejoins int64
	for _, n := range all {
		rejoins += n.rejoins.Load()
		if got := len(n.rejoin.snapshot()); got > len(n.cfg.Join) {
			t.Errorf("%s still lists %d addresses to rejoin: %+v", n.Name(), got, n.rejoin.snapshot())
		}
	}
	if rejoins == 0 {
		t.Error("no member rejoined another: the heal came from elsewhere")
	}
}

// A member that left is not rejoined; one that crashed is, every
// reconnect interval, and its entry goes after the reconnect timeout.
func TestReconnectSkipsLeftMembers(t *testing.T) {
	pn := clustertest.NewNetwork()
	cfg := func(node string, join ...string) Config {
		c := partitionConfig(pn, node, join...)
		c.ReconnectInterval = 50 * time.Millisecond
		c.ReconnectTimeout = 2 * time.Second
		return c
	}
	a := start(t, cfg("skip-a"))
	b := start(t, cfg("skip-b", a.LocalAddr()))
	leaver := start(t, cfg("skip-leaver", a.LocalAddr()))
	crasher := start(t, cfg("skip-crasher", a.LocalAddr()))
	checkFor(t, settle, 5*time.Millisecond, func() error { return allSee(a, b, leaver, crasher) })

	if err := leaver.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	crashed := time.Now()
	if err := crasher.Shutdown(); err != nil {
		t.Fatal(err)
	}
	checkFor(t, settle, 10*time.Millisecond, func() error {
		for _, n := range []*testNode{a, b} {
			if _, _, err := n.downAt(crasher.Name()); err != nil {
				return err
			}
			if _, reason, err := n.downAt(leaver.Name()); err != nil || reason != ReasonLeft {
				return fmt.Errorf("%s: %s down %q, %v", n.Name(), leaver.Name(), reason, err)
			}
		}
		return nil
	})
	leaverDials, crasherDials := pn.Dials(leaver.LocalAddr()), pn.Dials(crasher.LocalAddr())
	for _, n := range []*testNode{a, b} {
		var addrs []string
		for _, e := range n.rejoin.snapshot() {
			addrs = append(addrs, e.addr)
		}
		if slices.Contains(addrs, leaver.LocalAddr()) && !slices.Contains(n.cfg.Join, leaver.LocalAddr()) {
			t.Errorf("%s lists the member that left to rejoin: %v", n.Name(), addrs)
		}
		if !slices.Contains(addrs, crasher.LocalAddr()) {
			t.Errorf("%s does not list the crashed member to rejoin: %v", n.Name(), addrs)
		}
	}
	// Every 50 ms, for 2 s after the crash: the crashed member's address
	// is dialled again and again, then given up.
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		for _, n := range []*testNode{a, b} {
			for _, e := range n.rejoin.snapshot() {
				if e.addr == crasher.LocalAddr() {
					return fmt.Errorf("%s still lists %s to rejoin %v after its crash", n.Name(), crasher.Name(), time.Since(crashed).Round(time.Millisecond))
				}
			}
		}
		return nil
	})
	if gaveUp := time.Since(crashed); gaveUp < 2*time.Second {
		t.Errorf("gave up on the crashed member after %v, before the 2 s reconnect timeout", gaveUp)
	}
	if n := pn.Dials(crasher.LocalAddr()) - crasherDials; n < 10 {
		t.Errorf("the crashed member's address was dialled %d times in its 2 s reconnect timeout at 50 ms intervals; want many", n)
	}
	if n := pn.Dials(leaver.LocalAddr()) - leaverDials; n != 0 {
		t.Errorf("the address of the member that left was dialled %d times after it left", n)
	}
	for _, n := range []*testNode{a, b} {
		if got := n.logs.count(mentions(crasher.Name(), "no longer trying to rejoin member")); got != 1 {
			t.Errorf("%s logged giving up on %s %d times, want 1", n.Name(), crasher.Name(), got)
		}
	}
}

// The seeds stay on the list: a seed that restarts with no seeds of its
// own (a new member at the same address, after a graceful stop) is
// rejoined by the members that had it as a seed, though none of them is
// alone.
func TestReconnectRejoinsRestartedSeed(t *testing.T) {
	a := startNode(t, "reseed-a")
	b := startNode(t, "reseed-b", a.LocalAddr())
	c := startNode(t, "reseed-c", b.LocalAddr())
	checkFor(t, settle, 5*time.Millisecond, func() error { return allSee(a, b, c) })
	// Past the join loops' follow-up joins (a second after the first),
	// which would otherwise rejoin the restarted seed by chance.
	time.Sleep(joinFollowUp + 500*time.Millisecond)

	addr := a.LocalAddr()
	if err := a.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	checkFor(t, settle, 10*time.Millisecond, func() error { return allSee(b, c) })
	cfg := testConfig("reseed-a")
	cfg.BindAddr = addr
	restarted := time.Now()
	a2 := start(t, cfg)
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error { return allSee(a2, b, c) })
	t.Logf("the seed, restarted without seeds, rejoined after %v", time.Since(restarted).Round(time.Millisecond))
}

// The presets give the reconnect defaults; a config overrides them, and
// a negative interval turns reconnecting off.
func TestReconnectConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		preset           Preset
		interval, expiry time.Duration
		wantI, wantT     time.Duration
	}{
		{LAN, 0, 0, 30 * time.Second, 24 * time.Hour},
		{Local, 0, 0, 30 * time.Second, 24 * time.Hour},
		{Fast, 0, 0, time.Second, 24 * time.Hour},
		{Fast, 5 * time.Second, time.Hour, 5 * time.Second, time.Hour},
		{LAN, -1, -1, -1, 24 * time.Hour},
	} {
		cfg := Config{Preset: tc.preset, ReconnectInterval: tc.interval, ReconnectTimeout: tc.expiry}
		if i, to := cfg.reconnect(); i != tc.wantI || to != tc.wantT {
			t.Errorf("%v with %v/%v: interval %v, timeout %v; want %v, %v", tc.preset, tc.interval, tc.expiry, i, to, tc.wantI, tc.wantT)
		}
	}

	cfg := testConfig("off")
	cfg.ReconnectInterval = -1
	off := start(t, cfg)
	if off.rejoinDone != nil {
		t.Error("the reconnect loop runs though it is off")
	}
	on := startNode(t, "on", off.LocalAddr())
	if on.rejoinDone == nil {
		t.Error("the reconnect loop does not run")
	}
	if got := on.rejoin.snapshot(); len(got) != 1 || got[0].addr != off.LocalAddr() || !got[0].seed {
		t.Errorf("the rejoin list of a member with one seed is %+v", got)
	}
}

// The list of addresses to rejoin keeps at most maxRejoin failed members
// (the one that failed first goes first), never drops a seed, forgets a
// member after the timeout, and hands out the addresses due oldest
// attempt first, at most so many in flight.
func TestRejoinList(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newRejoinList(3)
	l.addSeed("seed:1")
	for i := range 3 {
		if ev := l.failed(fmt.Sprintf("m%d:1", i), fmt.Sprintf("m%d", i), t0.Add(time.Duration(i)*time.Second)); ev != nil {
			t.Fatalf("evicted %+v below the limit", ev)
		}
	}
	ev := l.failed("m3:1", "m3", t0.Add(3*time.Second))
	if ev == nil || ev.name != "m0" {
		t.Fatalf("evicted %+v, want m0 (the first to fail)", ev)
	}
	addrs := func() []string {
		var out []string
		for _, e := range l.snapshot() {
			out = append(out, e.addr)
		}
		return out
	}
	if got := addrs(); !slices.Equal(got, []string{"m1:1", "m2:1", "m3:1", "seed:1"}) {
		t.Fatalf("list %v", got)
	}
	// A failure at a seed's address does not count against the limit.
	if ev := l.failed("seed:1", "s", t0.Add(4*time.Second)); ev != nil {
		t.Errorf("a failure at a seed evicted %+v", ev)
	}
	// The same address failing again is one entry, with the new name.
	if ev := l.failed("m3:1", "m3b", t0.Add(5*time.Second)); ev != nil {
		t.Errorf("a second failure at an address evicted %+v", ev)
	}

	// due: not the alive, not self, oldest attempt first, bounded.
	got := l.due(map[string]bool{"m1:1": true}, "m2:1", 2)
	if len(got) != 2 {
		t.Fatalf("due = %+v, want 2", got)
	}
	if again := l.due(nil, "", 2); len(again) != 0 {
		t.Errorf("due with 2 in flight of 2 = %+v", again)
	}
	for _, e := range got {
		l.done(e.addr, t0.Add(10*time.Second))
	}
	next := l.due(nil, "", 1)
	if len(next) != 1 || next[0].addr != "m1:1" && next[0].addr != "m2:1" {
		t.Errorf("due after two attempts = %+v, want one never tried (m1 or m2)", next)
	}
	l.done(next[0].addr, t0.Add(11*time.Second))

	// back: a member up again leaves the list; at a seed, the seed stays.
	if e := l.back("m3:1"); e == nil || e.name != "m3b" {
		t.Errorf("back(m3) = %+v", e)
	}
	if e := l.back("seed:1"); e == nil || e.name != "s" {
		t.Errorf("back(seed) = %+v", e)
	}
	if e := l.back("nowhere:1"); e != nil {
		t.Errorf("back(nowhere) = %+v", e)
	}
	if got := addrs(); !slices.Equal(got, []string{"m1:1", "m2:1", "seed:1"}) {
		t.Errorf("list after back %v", got)
	}

	// left: the member is not rejoined.
	l.left("m2")
	// reap: m1 failed at t0+1 s; with a 30 s timeout it goes at t0+32 s.
	if r := l.reap(t0.Add(30*time.Second), 30*time.Second); len(r) != 0 {
		t.Errorf("reaped %+v too early", r)
	}
	if r := l.reap(t0.Add(32*time.Second), 30*time.Second); len(r) != 1 || r[0].name != "m1" {
		t.Errorf("reaped %+v, want m1", r)
	}
	if got := addrs(); !slices.Equal(got, []string{"seed:1"}) {
		t.Errorf("list at the end %v, want only the seed", got)
	}
}

// partitionConfig returns a Fast config for node joining join, on pn.
func partitionConfig(pn *clustertest.Network, node string, join ...string) Config {
	cfg := testConfig(node, join...)
	cfg.WrapTransport = pn.Wrap
	return cfg
}

// addrs returns the gossip addresses of nodes.
func addrs(nodes []*testNode) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.LocalAddr()
	}
	return out
}
