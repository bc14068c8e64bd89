package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/console"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/cluster"
	"github.com/netsvc-go/netsvc/service"
)

// The partition tests cut a real network between "netsvc node" processes,
// each in a network namespace of its own (netLab): five nodes with the
// demo services, gossip preset fast, started as README starts a cluster
// (the first without --join, each next one joining the one before). A
// client process on each side of the cut calls math.multiply of every
// node in a loop, with a deadline. Each test checks that no call runs past
// its deadline, that each side withdraws the other's services within the
// failure-detection bound and keeps serving itself, and that once the
// network is back the full mesh and every service return everywhere,
// once each, within healBound. Heal times are logged.
//
// They run as root on Linux (CI does) and skip elsewhere. Measuring
// another build: NETSVC_PARTITION_BIN=path runs its nodes with that
// binary, and NETSVC_PARTITION_HEAL=30s waits that long for the heal;
// NETSVC_PARTITION_LOGS=1 prints the nodes' logs even when all passed.

const (
	partitionDeadline = 2 * time.Second        // of each call
	partitionGrace    = 500 * time.Millisecond // a call may end this late (beyond the time its process did not run)
	withdrawBound     = 3 * time.Second        // fast: dead in ~1 s (measured 0.7–1.35 s), and the link closed at once
	// A node cut off alone is slower to give up on the others: all its
	// probes fail, so memberlist (Lifeguard) takes itself for the sick one
	// and stretches its probe interval by one more 200 ms with each failed
	// probe (up to 8×). Its fourth or fifth probe finds the last of four
	// peers: 200+400+600+800(+1000) ms, then 400 ms of suspicion, about
	// 2.4–3.4 s (measured 2.46–3.45 s).
	loneWithdrawBound = 6 * time.Second
	healBound         = 10 * time.Second // from the network back to the full mesh and every service everywhere
	stableFor         = 2 * time.Second  // whole means whole for this long: past any failure detection the cut started
	callerEnv         = "NETSVC_PARTITION_CALLER"
)

// blipHealBound is the heal bound of a blip: under the 5 s retry delay
// a relink that waited for it would take.
const blipHealBound = 3 * time.Second

func TestPartitions(t *testing.T) {
	needLab(t)
	bin := os.Getenv("NETSVC_PARTITION_BIN")
	if bin == "" {
		bin = buildBinary(t)
	}
	heal := healBound
	if s := os.Getenv("NETSVC_PARTITION_HEAL"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("NETSVC_PARTITION_HEAL=%q: %v", s, err)
		}
		heal = d
	}

	// {a, b} | {c, d, e} for 5 s: longer than failure detection, so each
	// side declares the other dead and withdraws its services; nobody is
	// alone, so only reconnecting to failed members heals it.
	t.Run("Split2of5For5s", func(t *testing.T) {
		runPartition(t, bin, partitionCase{side: []string{"a", "b"}, hold: 5 * time.Second, detected: true, heal: heal})
	})
	// The same split for 0.5 s, a blip: failure detection may or may
	// not finish; either way the mesh must be whole again, and without
	// waiting the retry delay (5 s): a member declared dead and alive
	// again is relinked at once, by whichever side dropped it.
	t.Run("Split2of5For500ms", func(t *testing.T) {
		runPartition(t, bin, partitionCase{side: []string{"a", "b"}, hold: 500 * time.Millisecond, heal: min(heal, blipHealBound)})
	})
	// The first node, started without --join, alone for 8 s: long enough
	// that memberlist on both sides has forgotten the other (dead for
	// more than fast's GossipToTheDeadTime, 5 s).
	t.Run("FirstNodeAloneFor8s", func(t *testing.T) {
		runPartition(t, bin, partitionCase{side: []string{"a"}, hold: 8 * time.Second, detected: true, heal: heal})
	})
}

// partitionCase is one scenario: side is cut from the other nodes for
// hold; detected says the cut lasts long enough to be detected.
type partitionCase struct {
	side     []string
	hold     time.Duration
	detected bool
	heal     time.Duration
}

// pnode is a node process of a partition test.
type pnode struct {
	*labHost
	p       *proc
	process service.ProcessID
}

func (n *pnode) console() string { return "http://127.0.0.1:8080" }

func runPartition(t *testing.T, bin string, pc partitionCase) {
	names := []string{"a", "b", "c", "d", "e"}
	lab := newNetLab(t, names...)
	var nodes []*pnode
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("NETSVC_PARTITION_LOGS") != "" {
			for _, n := range nodes {
				t.Logf("--- node %s (%s) log, last lines:\n%s", n.name, n.ip, tail(n.p.stderr.String(), 40))
			}
		}
	})
	for i, h := range lab.hosts {
		args := []string{"node", "--name", h.name, "--listen", h.ip + ":11111", "--gossip", h.ip + ":7946",
			"--gossip-preset", "fast", "--console", "127.0.0.1:8080", "--demo", "--demo-interval", "500ms"}
		if i > 0 {
			args = append(args, "--join", lab.hosts[i-1].ip+":7946")
		}
		nodes = append(nodes, &pnode{labHost: h, p: h.start(t, bin, nil, args...)})
	}
	live := map[service.ProcessID]string{}
	for _, n := range nodes {
		nodetest.WaitFor(t, 15*time.Second, func() error {
			select {
			case <-n.p.done:
				t.Fatalf("node %s exited with %d:\n%s", n.name, n.p.code, n.p.stderr.String())
			default:
			}
			var info struct {
				Process service.ProcessID `json:"process"`
			}
			if err := n.get(n.console()+"/api/node", &info); err != nil {
				return err
			}
			n.process = info.Process
			return nil
		})
		live[n.process] = n.name
	}
	var one, two []*pnode
	for _, n := range nodes {
		if slices.Contains(pc.side, n.name) {
			one = append(one, n)
		} else {
			two = append(two, n)
		}
	}
	formed := time.Now()
	nodetest.WaitFor(t, 20*time.Second, func() error { return meshWhole(nodes, live) })
	t.Logf("cluster formed in %v", time.Since(formed).Round(time.Millisecond))

	// A client process on each side, calling every node's math.
	callers := []*callerProc{
		startCaller(t, one[0].labHost, "caller-1", names),
		startCaller(t, two[len(two)-1].labHost, "caller-2", names),
	}
	for _, c := range callers {
		nodetest.WaitFor(t, 15*time.Second, func() error { return c.answeredAll(names, time.Time{}) })
	}

	// The cut.
	var sideHosts []*labHost
	for _, n := range one {
		sideHosts = append(sideHosts, n.labHost)
	}
	lab.cut(sideHosts...)
	cut := time.Now()
	liveOf := func(side []*pnode) map[service.ProcessID]string {
		m := map[service.ProcessID]string{}
		for _, n := range side {
			m[n.process] = n.name
		}
		return m
	}
	withdrawn := "-"
	if pc.detected {
		// Each node sees the services of its own side only, once each,
		// and nothing of the other side, within the bound.
		took := map[string]time.Duration{}
		var errs []string
		for len(took) < len(nodes) {
			errs = errs[:0]
			for _, side := range [][]*pnode{one, two} {
				sl := liveOf(side)
				for _, n := range side {
					if _, ok := took[n.name]; ok {
						continue
					}
					if err := servicesAre(n, sl); err != nil {
						errs = append(errs, err.Error())
						continue
					}
					took[n.name] = time.Since(cut)
				}
			}
			if time.Since(cut) > loneWithdrawBound {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		var worst time.Duration
		for _, side := range [][]*pnode{one, two} {
			bound := withdrawBound
			if len(side) == 1 {
				bound = loneWithdrawBound
			}
			for _, n := range side {
				d, ok := took[n.name]
				if !ok || d > bound {
					t.Errorf("%s did not withdraw the other side's services within %v (%v): %v", n.name, bound, d, errs)
				}
				worst = max(worst, d)
			}
		}
		withdrawn = worst.Round(10 * time.Millisecond).String()
		t.Logf("cut %v: every node withdrew the other side's services within %v (%s)", pc.side, worst.Round(time.Millisecond), fmtDurations(took))
	}
	if rest := pc.hold - time.Since(cut); rest > 0 {
		time.Sleep(rest) // the length of the cut, not a synchronisation
	}
	if pc.detected {
		// Still split: nothing came back across the cut, nothing went
		// from within a side.
		for _, side := range [][]*pnode{one, two} {
			for _, n := range side {
				if err := servicesAre(n, liveOf(side)); err != nil {
					t.Errorf("at the end of the cut: %v", err)
				}
			}
		}
	}

	// The heal. A cut shorter than failure detection may still end in
	// members declared dead just after it (their suspicion started during
	// the cut), so the cluster counts as whole again only once it stays
	// whole for stableFor; the heal time is when that stretch began.
	lab.heal()
	healed := time.Now()
	var gossipAt, linksAt, servicesAt, wholeAt time.Duration
	mark := func(at *time.Duration, err error) error {
		if err != nil {
			*at = 0
		} else if *at == 0 {
			*at = time.Since(healed)
		}
		return err
	}
	var broke []string // how the cluster fell apart again after being whole
	for {
		g := mark(&gossipAt, gossipWhole(nodes))
		l := mark(&linksAt, linksWhole(nodes, live))
		s := mark(&servicesAt, servicesWhole(nodes, live))
		err := mark(&wholeAt, errors.Join(g, l, s))
		if err != nil && len(broke) < 5 && len(broke) < int(time.Since(healed)/time.Second)+1 {
			broke = append(broke, fmt.Sprintf("at %v: %v", time.Since(healed).Round(10*time.Millisecond), err))
		}
		if err == nil && time.Since(healed)-wholeAt >= stableFor {
			break
		}
		if time.Since(healed) > pc.heal+stableFor {
			t.Fatalf("not whole for %v within %v after the network came back (gossip whole since %v, links since %v, services since %v): %v\nearlier: %v",
				stableFor, pc.heal, gossipAt, linksAt, servicesAt, err, broke)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if wholeAt > pc.heal {
		t.Errorf("whole again only %v after the network came back; want within %v (%v)", wholeAt, pc.heal, broke)
	}
	t.Logf("HEAL %s: cut %v for %v: withdrawn within %s; after the network came back: gossip whole in %v, links in %v, services in %v, all in %v",
		t.Name(), pc.side, pc.hold, withdrawn, gossipAt.Round(10*time.Millisecond), linksAt.Round(10*time.Millisecond),
		servicesAt.Round(10*time.Millisecond), wholeAt.Round(10*time.Millisecond))
	if len(broke) > 1 {
		t.Logf("before that: %s", strings.Join(broke, "; "))
	}
	whole := healed.Add(wholeAt)
	// The clients reach every node's math again.
	for _, c := range callers {
		nodetest.WaitFor(t, 5*time.Second, func() error { return c.answeredAll(names, whole) })
	}

	// The calls: none past its deadline; each side served itself
	// throughout the cut.
	sideOf := map[string]int{}
	for _, n := range one {
		sideOf[n.name] = 1
	}
	for _, n := range two {
		sideOf[n.name] = 2
	}
	for i, c := range callers {
		calls := c.stop(t)
		mySide := i + 1
		var late, ownFailed []string
		codes := map[string]int{}
		var longest time.Duration
		for _, l := range calls {
			d := time.Duration(l.End - l.Start)
			if ran := d - time.Duration(l.Stalled); ran > partitionDeadline+partitionGrace {
				late = append(late, fmt.Sprintf("%s %v (stalled %v) at %v", l.Target, d, time.Duration(l.Stalled),
					time.Unix(0, l.Start).Sub(cut).Round(time.Millisecond)))
			}
			longest = max(longest, d)
			start, end := time.Unix(0, l.Start), time.Unix(0, l.End)
			if start.Before(cut) || end.After(healed) {
				continue
			}
			if sideOf[l.Target] == mySide {
				if l.Code != 0 {
					ownFailed = append(ownFailed, fmt.Sprintf("%s: %d %s at %v", l.Target, l.Code, l.Err, start.Sub(cut).Round(time.Millisecond)))
				}
			} else {
				codes[fmt.Sprintf("%d", l.Code)]++
			}
		}
		t.Logf("%s: %d calls, longest %v; calls across the cut during it ended with codes %v", c.name, len(calls),
			longest.Round(time.Millisecond), codes)
		if len(late) > 0 {
			t.Errorf("%s: %d calls ran past their %v deadline: %v", c.name, len(late), partitionDeadline, late)
		}
		if len(ownFailed) > 0 {
			t.Errorf("%s: %d calls to its own side failed during the cut: %v", c.name, len(ownFailed), ownFailed)
		}
	}
	for _, n := range nodes {
		for _, bad := range []string{"panic:", "fatal error:", "DATA RACE"} {
			if strings.Contains(n.p.stderr.String(), bad) {
				t.Errorf("node %s's log has %q", n.name, bad)
			}
		}
	}
}

// meshWhole checks the cluster at rest: gossip, links and services.
func meshWhole(nodes []*pnode, live map[service.ProcessID]string) error {
	return errors.Join(gossipWhole(nodes), linksWhole(nodes, live), servicesWhole(nodes, live))
}

// gossipWhole checks that every node lists every node as a live member.
func gossipWhole(nodes []*pnode) error {
	var errs []string
	for _, n := range nodes {
		var ms []cluster.Member
		if err := n.get(n.console()+"/api/members", &ms); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		seen := map[string]int{}
		for _, m := range ms {
			if m.State == cluster.StateAlive {
				seen[m.Meta.Node]++
			}
		}
		for _, o := range nodes {
			if seen[o.name] != 1 {
				errs = append(errs, fmt.Sprintf("%s lists %s %d times as alive", n.name, o.name, seen[o.name]))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("gossip: %s", strings.Join(errs, ", "))
	}
	return nil
}

// linksWhole checks the full mesh: each node has one active link to
// each other node and no other link but to the clients (caller-*).
func linksWhole(nodes []*pnode, live map[service.ProcessID]string) error {
	var errs []string
	for _, n := range nodes {
		var conns console.Connections
		if err := n.get(n.console()+"/api/connections", &conns); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		per := map[string]int{}
		for _, l := range conns.Links {
			switch {
			case l.State != "active":
				errs = append(errs, fmt.Sprintf("%s has a %s link %s (%s)", n.name, l.State, l.ID, l.RemoteAddress))
			case strings.HasPrefix(l.RemoteNode, "caller-"):
			case live[l.RemoteProcess] == "":
				errs = append(errs, fmt.Sprintf("%s has a link to %s of unknown process %s", n.name, l.RemoteNode, l.RemoteProcess))
			default:
				per[live[l.RemoteProcess]]++
			}
		}
		for _, o := range nodes {
			if o != n && per[o.name] != 1 {
				errs = append(errs, fmt.Sprintf("%s has %d links to %s", n.name, per[o.name], o.name))
			}
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("links: %s", strings.Join(errs, ", "))
	}
	return nil
}

// servicesWhole checks that every node sees math and seed of every node
// once, and no binding of any other process.
func servicesWhole(nodes []*pnode, live map[service.ProcessID]string) error {
	var errs []error
	for _, n := range nodes {
		errs = append(errs, servicesAre(n, live))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("services: %w", err)
	}
	return nil
}

// servicesAre checks that n sees math and seed of the processes in live
// once each, and no binding of another process.
func servicesAre(n *pnode, live map[service.ProcessID]string) error {
	var svcs []struct {
		Name    string            `json:"name"`
		Process service.ProcessID `json:"process"`
		Node    string            `json:"node"`
	}
	if err := n.get(n.console()+"/api/services", &svcs); err != nil {
		return err
	}
	var bs []service.Binding
	for _, s := range svcs {
		bs = append(bs, service.Binding{Name: s.Name, Address: service.Address{Process: s.Process}, Node: s.Node})
	}
	return checkBindings(n.name, bs, live)
}

func fmtDurations(m map[string]time.Duration) string {
	var parts []string
	for k, d := range m {
		parts = append(parts, fmt.Sprintf("%s %v", k, d.Round(10*time.Millisecond)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// --- the client processes ---

// callerSpec tells a caller process what to do.
type callerSpec struct {
	Name     string        `json:"name"`     // its node name
	Server   string        `json:"server"`   // the node it links to
	Targets  []string      `json:"targets"`  // whose math to call
	Every    time.Duration `json:"every"`    // a call to each target this often
	Deadline time.Duration `json:"deadline"` // of each call
}

// callLine is a line of a caller's output: one call that ended.
type callLine struct {
	Target  string `json:"target"`
	Start   int64  `json:"start"`   // Unix ns
	End     int64  `json:"end"`     // Unix ns
	Stalled int64  `json:"stalled"` // ns of the call during which the caller's process did not run
	Code    int    `json:"code"`    // 0: answered; a failure code; -1: another error; -2: a wrong answer
	Err     string `json:"err,omitempty"`
}

// callerProc is a running caller process.
type callerProc struct {
	name string
	p    *proc
}

// startCaller runs this test binary as a client process in h's
// namespace, linked to the node there, calling the math of targets.
func startCaller(t *testing.T, h *labHost, name string, targets []string) *callerProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(callerSpec{Name: name, Server: h.ip + ":11111", Targets: targets,
		Every: 100 * time.Millisecond, Deadline: partitionDeadline})
	c := &callerProc{name: name, p: h.start(t, exe, []string{callerEnv + "=" + string(spec)}, "-test.run=^TestPartitionCaller$")}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s stderr, last lines:\n%s", name, tail(c.p.stderr.String(), 20))
		}
	})
	return c
}

// calls parses what the caller printed so far.
func (c *callerProc) calls() []callLine {
	var out []callLine
	sc := bufio.NewScanner(strings.NewReader(c.p.stdout.String()))
	for sc.Scan() {
		var l callLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Target != "" {
			out = append(out, l)
		}
	}
	return out
}

// answeredAll checks that the caller had an answer from each target to
// a call started after since.
func (c *callerProc) answeredAll(targets []string, since time.Time) error {
	select {
	case <-c.p.done:
		return fmt.Errorf("%s exited with %d: %s", c.name, c.p.code, tail(c.p.stderr.String(), 10))
	default:
	}
	ok := map[string]bool{}
	for _, l := range c.calls() {
		if l.Code == 0 && (since.IsZero() || l.Start > since.UnixNano()) {
			ok[l.Target] = true
		}
	}
	var missing []string
	for _, tg := range targets {
		if !ok[tg] {
			missing = append(missing, tg)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s has no answer yet from %v", c.name, missing)
	}
	return nil
}

// stop interrupts the caller, waits for it, and returns its calls.
func (c *callerProc) stop(t *testing.T) []callLine {
	t.Helper()
	if err := c.p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	r := c.p.wait(t, partitionDeadline+10*time.Second)
	if r.code != 0 {
		t.Errorf("%s exited with %d: %s", c.name, r.code, tail(r.stderr, 20))
	}
	return c.calls()
}

// TestPartitionCaller is not a test of its own: the partition tests run
// this test binary as a client process in a network namespace, with this
// test selected and the caller's spec in NETSVC_PARTITION_CALLER. It
// prints one JSON line per call, until interrupted.
func TestPartitionCaller(t *testing.T) {
	spec := os.Getenv(callerEnv)
	if spec == "" {
		t.Skip("the client process of the partition tests")
	}
	os.Exit(runCaller(spec, os.Stdout, os.Stderr))
}

func runCaller(specJSON string, stdout, stderr io.Writer) int {
	var spec callerSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(stderr, "caller spec:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	xc := node.Client("", spec.Server)
	xc.Retry = 200 * time.Millisecond
	n, err := node.Start(ctx, node.Config{Name: spec.Name, Exchanges: []exchange.Config{xc}})
	if err != nil {
		fmt.Fprintln(stderr, "caller:", err)
		return 1
	}
	defer stopNode(n)
	stalls := startStallMonitor()
	defer stalls.stop()

	var mu sync.Mutex
	enc := json.NewEncoder(stdout)
	var calls sync.WaitGroup
	last := map[string]service.Address{}
	tick := time.NewTicker(spec.Every)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			continue
		case <-tick.C:
		}
		for _, target := range spec.Targets {
			// The address of the target's math as this client sees it
			// now; while it sees none, the last one it saw, so the call
			// fails as a user's would.
			if a, ok := mathOf(n, target); ok {
				last[target] = a
			}
			to, ok := last[target]
			if !ok {
				continue
			}
			calls.Add(1)
			go func() {
				defer calls.Done()
				x, y := rand.Int64N(2001)-1000, rand.Int64N(2001)-1000
				start := time.Now()
				cctx, cancel := context.WithTimeout(context.Background(), spec.Deadline)
				v, err := service.CallFor[int64](cctx, n.Runtime(), to, "multiply", x, y)
				cancel()
				end := time.Now()
				l := callLine{Target: target, Start: start.UnixNano(), End: end.UnixNano(), Stalled: int64(stalls.during(start, end))}
				var f *service.Failure
				switch {
				case err == nil && v != x*y:
					l.Code, l.Err = -2, fmt.Sprintf("multiply(%d, %d) = %d", x, y, v)
				case errors.As(err, &f):
					l.Code, l.Err = int(f.Code), f.Error()
				case err != nil:
					l.Code, l.Err = -1, err.Error()
				}
				mu.Lock()
				defer mu.Unlock()
				enc.Encode(l)
			}()
		}
	}
	calls.Wait() // each ends by its deadline
	return 0
}
