package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// Five members joining through a chain of seeds (each joins the previous
// one, started once that one has joined) all see each other, with
// metadata, within 2 s.
func TestChainJoinConverges(t *testing.T) {
	const n = 5
	begin := time.Now()
	nodes := make([]*testNode, n)
	for i := range n {
		var join []string
		if i > 0 {
			seed := nodes[i-1]
			if i > 1 {
				checkFor(t, 2*time.Second, 2*time.Millisecond, func() error { return seed.sees(nodes[i-2]) })
			}
			join = []string{seed.LocalAddr()}
		}
		nodes[i] = startNode(t, "chain"+string(rune('a'+i)), join...)
	}
	last := time.Now()
	checkFor(t, 2*time.Second-time.Since(begin), 2*time.Millisecond, func() error { return allSee(nodes...) })
	t.Logf("convergence: %d members through a chain of seeds in %v (%v after the last one started)",
		n, time.Since(begin).Round(time.Millisecond), time.Since(last).Round(time.Millisecond))

	for _, node := range nodes {
		if got := node.rec.count(func(e rec) bool { return e.m.Name == node.Name() }); got != 0 {
			t.Errorf("%s was told %d events about itself", node.Name(), got)
		}
	}
}

// Five members started at the same moment, joining through a chain of
// seeds, converge too: every member joins its own seeds even when others
// have already joined it, so they cannot split into two clusters. Joins
// racing each other can still leave a member unknown to another (memberlist
// gossips each alive message only a few times); the follow-up join a second
// later repairs that, and push/pull (every 5 s in Fast) is the last resort.
// Measured over 300 runs: median 128 ms, p99 334 ms, max 1.04 s. The bound
// is two push/pull intervals; the time is logged.
func TestSimultaneousChainJoinConverges(t *testing.T) {
	t.Parallel()
	const n = 5
	begin := time.Now()
	nodes := make([]*testNode, n)
	for i := range n {
		var join []string
		if i > 0 {
			join = []string{nodes[i-1].LocalAddr()}
		}
		nodes[i] = startNode(t, "simul"+string(rune('a'+i)), join...)
	}
	checkFor(t, 10*time.Second, 5*time.Millisecond, func() error { return allSee(nodes...) })
	t.Logf("convergence: %d members started at once, chain of seeds, in %v", n, time.Since(begin).Round(time.Millisecond))
}

// A member shut down without leaving is reported dead by the others within 5 s.
func TestCrashIsReportedDead(t *testing.T) {
	a := startNode(t, "crash-a")
	b := startNode(t, "crash-b", a.LocalAddr())
	c := startNode(t, "crash-c", b.LocalAddr())
	checkFor(t, settle, 5*time.Millisecond, func() error { return allSee(a, b, c) })

	crashed := c.Name()
	t0 := time.Now()
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		worst = 0
		for _, n := range []*testNode{a, b} {
			at, reason, err := n.downAt(crashed)
			if err != nil {
				return err
			}
			if reason != ReasonDead {
				t.Fatalf("%s: %s went down with reason %q, want %q", n.Name(), crashed, reason, ReasonDead)
			}
			worst = max(worst, at.Sub(t0))
		}
		return nil
	})
	t.Logf("dead detection: all survivors told within %v", worst.Round(time.Millisecond))

	for _, n := range []*testNode{a, b} {
		if len(n.Members()) != 2 {
			t.Errorf("%s still sees %v", n.Name(), names(n.Members()))
		}
	}
	if err := c.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := c.Leave(time.Second); err != nil {
		t.Errorf("Leave after Shutdown: %v", err)
	}
}

// Members carries what the failure detector last heard from each peer:
// a round trip and a recent ack while it answers, an age that grows once
// it stops (before it is declared dead).
func TestMembersShowProbes(t *testing.T) {
	a := startNode(t, "probe-a")
	b := startNode(t, "probe-b", a.LocalAddr())
	checkFor(t, settle, 5*time.Millisecond, func() error { return allSee(a, b) })
	peerOf := func(n *testNode, name string) (Member, error) {
		for _, m := range n.Members() {
			if m.Name == name {
				return m, nil
			}
		}
		return Member{}, fmt.Errorf("%s does not list %s", n.Name(), name)
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		m, err := peerOf(a, b.Name())
		if err != nil {
			return err
		}
		if m.RTTMillis <= 0 || m.AckAgeMillis <= 0 || m.AckAgeMillis > 1000 {
			return fmt.Errorf("b as a sees it: rtt %v ms, ack %v ms ago; want a probe acknowledged within the last second", m.RTTMillis, m.AckAgeMillis)
		}
		return nil
	})
	for _, m := range a.Members() {
		if m.Name == a.Name() && (m.RTTMillis != 0 || m.AckAgeMillis != 0) {
			t.Errorf("the local member has probe figures: %+v", m)
		}
	}

	// b stops answering (its gossip shut, no goodbye): the age grows
	// while b is still listed, until it is declared dead.
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	var seen float64
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		m, err := peerOf(a, b.Name())
		if err != nil {
			return err // declared dead before its age grew: that fails too
		}
		if seen = m.AckAgeMillis; seen < 300 {
			return fmt.Errorf("b's last ack is only %v ms old", seen)
		}
		return nil
	})
	t.Logf("a still listed b with its last ack %v ms old", seen)
}

// A member that leaves is reported "left" by the others within 1 s.
func TestLeaveIsReportedLeft(t *testing.T) {
	a := startNode(t, "leave-a")
	b := startNode(t, "leave-b", a.LocalAddr())
	c := startNode(t, "leave-c", a.LocalAddr())
	checkFor(t, settle, 5*time.Millisecond, func() error { return allSee(a, b, c) })

	leaver := c.Name()
	t0 := time.Now()
	if err := c.Leave(time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	leaveTook := time.Since(t0)
	var worst time.Duration
	checkFor(t, time.Second, 2*time.Millisecond, func() error {
		worst = 0
		for _, n := range []*testNode{a, b} {
			at, reason, err := n.downAt(leaver)
			if err != nil {
				return err
			}
			if reason != ReasonLeft {
				t.Fatalf("%s: %s went down with reason %q, want %q", n.Name(), leaver, reason, ReasonLeft)
			}
			worst = max(worst, at.Sub(t0))
		}
		return nil
	})
	t.Logf("leave: survivors told within %v; Leave returned after %v", worst.Round(time.Millisecond), leaveTook.Round(time.Millisecond))

	if err := c.Leave(time.Second); err != nil {
		t.Errorf("second Leave: %v", err)
	}
	if err := c.Shutdown(); err != nil {
		t.Errorf("Shutdown after Leave: %v", err)
	}
	if err := c.UpdateMeta(c.cfg.Meta); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateMeta after Leave = %v, want ErrClosed", err)
	}
	if got := names(c.Members()); len(got) != 1 || got[0] != leaver {
		t.Errorf("Members after Leave = %v, want only self", got)
	}

	// memberlist's own leave follows the goodbye; the survivors must not
	// report the member again, neither up nor down.
	checkFor(t, settle, 10*time.Millisecond, func() error {
		for _, n := range []*testNode{a, b} {
			for _, m := range n.ml.Members() {
				if m.Name == leaver {
					return errors.New(n.Name() + ": memberlist still counts " + leaver)
				}
			}
		}
		return nil
	})
	for _, n := range []*testNode{a, b} {
		if e, _ := n.rec.last(leaver); e.up || e.reason != ReasonLeft {
			t.Errorf("%s: last event about %s is up=%v reason=%q; want the %q MemberDown", n.Name(), leaver, e.up, e.reason, ReasonLeft)
		}
		if got := n.rec.count(func(e rec) bool { return e.m.Name == leaver && e.reason == ReasonLeft }); got != 1 {
			t.Errorf("%s: %d %q MemberDown for %s, want 1", n.Name(), got, ReasonLeft, leaver)
		}
	}
}

// A node restarted on the same gossip port (same Node name, new boot id)
// comes back as a new member, and its old incarnation is reported down.
func TestRestartedNodeComesBack(t *testing.T) {
	a := startNode(t, "restart-a")
	b := startNode(t, "restart-b", a.LocalAddr())
	c := startNode(t, "restart-c", a.LocalAddr())
	checkFor(t, settle, 5*time.Millisecond, func() error { return allSee(a, b, c) })

	// Crash, then restart at once on the same port.
	old := c.Name()
	addr := c.LocalAddr()
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("restart-c", a.LocalAddr())
	cfg.BindAddr = addr
	t0 := time.Now()
	c2 := start(t, cfg)
	if c2.Name() == old {
		t.Fatalf("restarted member kept its name %s", old)
	}
	if !strings.HasPrefix(c2.Name(), "restart-c#") {
		t.Fatalf("name %q does not start with the node name", c2.Name())
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if err := allSee(a, b, c2); err != nil {
			return err
		}
		for _, n := range []*testNode{a, b} {
			if _, _, err := n.downAt(old); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("restart after crash: new incarnation up and old one down within %v", time.Since(t0).Round(time.Millisecond))

	// Leave, then restart again: the goodbye does not block the next one.
	old2 := c2.Name()
	if err := c2.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	cfg = testConfig("restart-c", b.LocalAddr())
	cfg.BindAddr = addr
	c3 := start(t, cfg)
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error { return allSee(a, b, c3) })
	for _, n := range []*testNode{a, b} {
		if _, reason, err := n.downAt(old2); err != nil || reason != ReasonLeft {
			t.Errorf("%s: down for %s = %q, %v; want %q", n.Name(), old2, reason, err, ReasonLeft)
		}
	}
}

// A two-member cluster whose seed restarts without seeds of its own heals:
// the survivor, alone, rejoins its seed address.
func TestAloneMemberRejoinsSeed(t *testing.T) {
	a := startNode(t, "alone-a")
	b := startNode(t, "alone-b", a.LocalAddr())
	checkFor(t, settle, 5*time.Millisecond, func() error { return allSee(a, b) })

	addr := a.LocalAddr()
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		_, _, err := b.downAt(a.Name())
		return err
	})
	cfg := testConfig("alone-a")
	cfg.BindAddr = addr
	a2 := start(t, cfg)
	checkFor(t, 8*time.Second, 10*time.Millisecond, func() error { return allSee(a2, b) })
}

// UpdateMeta reaches the others as a MemberUp with the new metadata.
func TestUpdateMetaReachesOthers(t *testing.T) {
	a := startNode(t, "update-a")
	b := startNode(t, "update-b", a.LocalAddr())
	c := startNode(t, "update-c", b.LocalAddr())
	checkFor(t, settle, 5*time.Millisecond, func() error { return allSee(a, b, c) })

	m := b.cfg.Meta
	m.Exchange = "127.0.0.1:22222"
	m.Console = ""
	m.Version = "v2"
	m.Group = "blue"
	t0 := time.Now()
	if err := b.UpdateMeta(m); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	if got := b.selfMeta(); got.Exchange != m.Exchange || got.Group != "blue" {
		t.Fatalf("local meta after UpdateMeta = %+v", got)
	}
	checkFor(t, 2*time.Second, 5*time.Millisecond, func() error { return allSee(a, b, c) })
	t.Logf("metadata update reached all within %v", time.Since(t0).Round(time.Millisecond))
	for _, n := range []*testNode{a, c} {
		if got := n.rec.count(isUp(b.Name())); got < 2 {
			t.Errorf("%s: %d MemberUp for %s, want 2 (join and update)", n.Name(), got, b.Name())
		}
	}

	// Same metadata again: nothing to gossip.
	if err := b.UpdateMeta(m); err != nil {
		t.Errorf("UpdateMeta with the same meta: %v", err)
	}
	// Fixed fields cannot change.
	for _, change := range []func(*Meta){
		func(m *Meta) { m.Node = "other" },
		func(m *Meta) { m.Process = "ffffffffffffffff" },
		func(m *Meta) { m.Protocol++ },
		func(m *Meta) { m.Cluster = "other" },
	} {
		bad := m
		change(&bad)
		if err := b.UpdateMeta(bad); err == nil {
			t.Errorf("UpdateMeta(%+v) succeeded; want an error", bad)
		}
	}
	big := m
	big.Version = strings.Repeat("v", MetaMaxSize)
	if err := b.UpdateMeta(big); err == nil || !strings.Contains(err.Error(), "512") {
		t.Errorf("UpdateMeta with oversized meta = %v, want a size error", err)
	}
	if got := b.selfMeta(); got != m.normalized() {
		t.Errorf("a failed UpdateMeta changed the local meta to %+v", got)
	}
}

// Members with the same key join; one with another key, or none, cannot,
// and keeps retrying without harm.
func TestEncryption(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	wrong := bytes.Repeat([]byte{9}, 32)

	cfgA := testConfig("enc-a")
	cfgA.SecretKey = key
	a := start(t, cfgA)
	cfgB := testConfig("enc-b", a.LocalAddr())
	cfgB.SecretKey = key
	b := start(t, cfgB)
	checkFor(t, settle, 5*time.Millisecond, func() error { return allSee(a, b) })

	cfgW := testConfig("enc-wrong", a.LocalAddr())
	cfgW.SecretKey = wrong
	w := start(t, cfgW)
	p := startNode(t, "enc-plain", a.LocalAddr())
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		for _, n := range []*testNode{w, p} {
			if f := n.joinFailures.Load(); f < 3 {
				return errors.New(n.Name() + ": fewer than 3 failed joins")
			}
		}
		return nil
	})
	for _, n := range []*testNode{w, p} {
		if got := len(n.Members()); got != 1 {
			t.Errorf("%s sees %v", n.Name(), names(n.Members()))
		}
		for _, o := range []*testNode{a, b} {
			if got := o.rec.count(isUp(n.Name())); got != 0 {
				t.Errorf("%s reported %s up", o.Name(), n.Name())
			}
		}
	}
	if err := allSee(a, b); err != nil {
		t.Error(err)
	}

	bad := testConfig("enc-bad")
	bad.SecretKey = []byte("short")
	if _, err := Start(bad, nil); err == nil || !strings.Contains(err.Error(), "secret key") {
		t.Errorf("Start with a 5-byte key = %v, want a key error", err)
	}
}

// Members of another protocol version or another cluster are never
// reported up, are logged once, and crash nobody.
func TestIncompatibleMembersAreIgnored(t *testing.T) {
	a := startNode(t, "compat-a")
	ok := startNode(t, "compat-ok", a.LocalAddr())

	cfgP := testConfig("compat-proto2", a.LocalAddr())
	cfgP.Meta.Protocol = 2
	p2 := start(t, cfgP)

	cfgC := testConfig("compat-other", a.LocalAddr())
	cfgC.Meta.Cluster = "other"
	other := start(t, cfgC)

	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if err := allSee(a, ok); err != nil {
			return err
		}
		for _, n := range []*testNode{p2, other} {
			if f := n.joinFailures.Load(); f < 3 {
				return errors.New(n.Name() + ": fewer than 3 failed joins")
			}
		}
		return nil
	})
	for _, n := range []*testNode{p2, other} {
		for _, o := range []*testNode{a, ok} {
			if got := o.rec.count(isUp(n.Name())); got != 0 {
				t.Errorf("%s reported incompatible %s up", o.Name(), n.Name())
			}
		}
		if got := len(n.Members()); got != 1 {
			t.Errorf("%s sees %v", n.Name(), names(n.Members()))
		}
	}
	// The protocol-2 member reached a (same label) at every join attempt:
	// one warning, not one per attempt.
	if got := a.logs.count(mentions(p2.Name(), "ignoring incompatible member")); got != 1 {
		t.Errorf("a logged %d warnings about %s, want 1", got, p2.Name())
	}
	// And p2, seeing a as incompatible in turn, warned once too.
	if got := p2.logs.count(mentions(a.Name(), "ignoring incompatible member")); got != 1 {
		t.Errorf("p2 logged %d warnings about %s, want 1", got, a.Name())
	}
}

// A member with the right label but undecodable metadata, or metadata
// naming another cluster, is vetoed and logged once.
func TestForeignMetadataIsVetoed(t *testing.T) {
	t.Parallel()
	a := startNode(t, "veto-a")
	for _, tc := range []struct{ name, meta string }{
		{"veto-garbage#1", "\x00\x01not json"},
		{"veto-empty#1", ""},
		{"veto-nonode#1", `{"protocol":1}`},
		{"veto-cluster#1", `{"node":"veto-cluster","protocol":1,"cluster":"elsewhere"}`},
	} {
		mc := memberlist.DefaultLocalConfig()
		mc.Name = tc.name
		mc.BindAddr = "127.0.0.1"
		mc.BindPort = 0
		mc.Label = labelPrefix + DefaultCluster
		mc.LogOutput = io.Discard
		mc.Delegate = rawMeta(tc.meta)
		raw, err := memberlist.Create(mc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = raw.Shutdown() })
		for range 3 {
			if _, err := raw.Join([]string{a.LocalAddr()}); err != nil {
				t.Fatalf("%s: join: %v", tc.name, err)
			}
		}
		// a merges the joiner's state after answering it: wait for that.
		checkFor(t, settle, 5*time.Millisecond, func() error {
			if a.logs.count(mentions(tc.name, "ignoring incompatible member")) == 0 {
				return errors.New(tc.name + ": no warning yet")
			}
			return nil
		})
	}
	for _, name := range []string{"veto-garbage#1", "veto-empty#1", "veto-nonode#1", "veto-cluster#1"} {
		if got := a.logs.count(mentions(name, "ignoring incompatible member")); got != 1 {
			t.Errorf("%s: a logged %d warnings, want 1", name, got)
		}
		if got := a.rec.count(isUp(name)); got != 0 {
			t.Errorf("%s: reported up", name)
		}
	}
	if got := len(a.Members()); got != 1 {
		t.Errorf("a sees %v", names(a.Members()))
	}
	if n := a.ml.NumMembers(); n != 1 {
		t.Errorf("memberlist counts %d members; vetoed members must not enter it", n)
	}
}

// rawMeta is a memberlist delegate gossiping fixed metadata bytes.
type rawMeta string

func (r rawMeta) NodeMeta(int) []byte               { return []byte(r) }
func (rawMeta) NotifyMsg([]byte)                    {}
func (rawMeta) GetBroadcasts(int, int) [][]byte     { return nil }
func (rawMeta) LocalState(bool) []byte              { return nil }
func (rawMeta) MergeRemoteState(buf []byte, _ bool) {}

// A member whose seed is not up yet keeps retrying and joins once it is.
func TestJoinRetriesUntilSeedIsUp(t *testing.T) {
	seedAddr := freeAddr(t)
	t0 := time.Now()
	b := startNode(t, "retry-b", seedAddr)
	if took := time.Since(t0); took > time.Second {
		t.Errorf("Start took %v with an absent seed; it must not wait", took)
	}
	checkFor(t, 3*time.Second, 10*time.Millisecond, func() error {
		if b.joinFailures.Load() < 2 {
			return errors.New("fewer than 2 failed joins")
		}
		return nil
	})
	cfg := testConfig("retry-seed")
	cfg.BindAddr = seedAddr
	seed := start(t, cfg)
	t1 := time.Now()
	checkFor(t, 6*time.Second, 10*time.Millisecond, func() error { return allSee(seed, b) })
	t.Logf("join retry: joined %v after the seed came up", time.Since(t1).Round(time.Millisecond))
}

// Start rejects bad configurations with an error, not a panic.
func TestStartRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(*Config){
		"no node":      func(c *Config) { c.Meta.Node = "" },
		"hash in node": func(c *Config) { c.Meta.Node = "a#b" },
		"bad bind":     func(c *Config) { c.BindAddr = "127.0.0.1" },
		"bad port":     func(c *Config) { c.BindAddr = "127.0.0.1:99999" },
		"big meta":     func(c *Config) { c.Meta.Version = strings.Repeat("x", 600) },
		"bad preset":   func(c *Config) { c.Preset = 7 },
		"long cluster": func(c *Config) { c.Meta.Cluster = strings.Repeat("c", 300) },
		"bad advert":   func(c *Config) { c.Advertise = "nowhere" },
	} {
		cfg := testConfig("bad")
		change(&cfg)
		c, err := Start(cfg, nil)
		if err == nil {
			c.Shutdown()
			t.Errorf("%s: Start succeeded", name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "cluster: ") {
			t.Errorf("%s: error %q does not say where it comes from", name, err)
		}
	}
}

// With a nil Events and a nil Logger a member still works.
func TestNilEventsAndLogger(t *testing.T) {
	t.Parallel()
	a, err := Start(Config{BindAddr: "127.0.0.1:0", Preset: Fast, Meta: Meta{Node: "nil-a"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown()
	b, err := Start(Config{BindAddr: "127.0.0.1:0", Preset: Fast, Meta: Meta{Node: "nil-b"}, Join: []string{a.LocalAddr(), a.LocalAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Leave(time.Second)
	checkFor(t, settle, 5*time.Millisecond, func() error {
		if len(a.Members()) != 2 || len(b.Members()) != 2 {
			return errors.New("not converged")
		}
		return nil
	})
	if got := b.Members()[0].Meta.Cluster; got != DefaultCluster {
		t.Errorf("cluster = %q, want %q", got, DefaultCluster)
	}
}
