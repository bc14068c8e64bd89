package node_test

// Calls over the network: how a call picks among replicas (rule 13).

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/service"
)

// countingMath starts a math service on p whose handler counts its runs
// in counts[label].
func countingMath(t *testing.T, p *proc, name, label string, counts *sync.Map, opts ...service.Option) service.Address {
	return startService(t, p, name, func(a *service.Agent) error {
		a.Export("multiply", func(x, y int) int {
			v, _ := counts.LoadOrStore(label, new(int))
			*v.(*int)++ // handlers run one at a time per service; each label is one service
			return x * y
		})
		return nil
	}, opts...)
}

func countsOf(counts *sync.Map, labels ...string) map[string]int {
	out := map[string]int{}
	for _, l := range labels {
		if v, ok := counts.Load(l); ok {
			out[l] = *v.(*int)
		}
	}
	return out
}

// TestCallsSpreadOverReplicas: calls by name from one process go
// round-robin over the replicas equally far away, and a call to a
// service group over its members, instead of all to the oldest.
func TestCallsSpreadOverReplicas(t *testing.T) {
	x := startNode(t, "x", serverX("", listen(t)))
	var counts sync.Map
	labels := []string{"m1", "m2", "m3"}
	for _, l := range labels {
		p := startNode(t, l, clientX("", x.Addr()))
		countingMath(t, p, "math", l, &counts, service.Groups("web-services"))
	}
	caller := startNode(t, "caller", clientX("", x.Addr()))
	visible(t, caller, "math", 3)

	const calls = 300
	for range calls {
		mustMultiply(t, caller, service.Name("math"))
	}
	got := countsOf(&counts, labels...)
	for _, l := range labels {
		if got[l] != calls/3 {
			t.Fatalf("%d calls by name over three replicas two hops away ran %v; want %d each", calls, got, calls/3)
		}
	}

	// A call to the group picks a member the same way.
	waitGroup(t, caller, "web-services", 3)
	counts.Clear()
	for range calls {
		mustMultiply(t, caller, service.Group("web-services"))
	}
	got = countsOf(&counts, labels...)
	for _, l := range labels {
		if got[l] != calls/3 {
			t.Fatalf("%d calls to the group ran %v; want %d each", calls, got, calls/3)
		}
	}
	t.Logf("%d calls by name and %d to the group, each spread %d/%d/%d", calls, calls, got["m1"], got["m2"], got["m3"])

	// A group with no member, and a target that cannot take a call.
	if _, err := multiply(caller, service.Group("nobody"), 6, 7); failureCode(err) != service.CodeNoSuchService {
		t.Fatalf("a call to an empty group: %v, want no such service", err)
	}
	_, err := multiply(caller, service.AllServices, 6, 7)
	if failureCode(err) != service.CodeBadTarget {
		t.Fatalf("a call to the whole registry: %v, want code %d (bad target)", err, service.CodeBadTarget)
	}
}

// TestCallsPreferLocal: a local replica takes every call while it is
// there; remote ones share only among themselves.
func TestCallsPreferLocal(t *testing.T) {
	x := startNode(t, "x", serverX("", listen(t)))
	var counts sync.Map
	remote := startNode(t, "remote", clientX("", x.Addr()))
	countingMath(t, remote, "math", "remote", &counts)
	caller := startNode(t, "caller", clientX("", x.Addr()))
	local := countingMath(t, caller, "math", "local", &counts)
	visible(t, caller, "math", 2)
	for range 50 {
		mustMultiply(t, caller, service.Name("math"))
	}
	if got := countsOf(&counts, "local", "remote"); got["local"] != 50 {
		t.Fatalf("50 calls with a local replica ran %v; want all local", got)
	}
	if err := caller.rt().StopService(ctxFor(t, waitLong), local); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		mustMultiply(t, caller, service.Name("math"))
	}
	if got := countsOf(&counts, "local", "remote"); got["remote"] != 10 {
		t.Fatalf("with the local replica gone, 10 calls ran %v; want all remote", got)
	}
}

// waitGroup waits until p sees n members of service group g.
func waitGroup(t *testing.T, p *proc, g string, n int) {
	t.Helper()
	nodetest.WaitFor(t, waitLong, func() error {
		if got := len(p.rt().LookupGroup(g)); got != n {
			return fmt.Errorf("%s sees %d members of %s, want %d", p.name, got, g, n)
		}
		return nil
	})
}

// TestFailoverNotRun: a request refused before its handler ran (here:
// its service holds as many delayed requests as it may, so it answers
// "overloaded, not run") is sent once more, by the caller's process, to
// the next replica: every call succeeds, and the refusing replica ran
// none of them.
func TestFailoverNotRun(t *testing.T) {
	x := startNode(t, "x", serverX("", listen(t)))
	var counts sync.Map
	full := startNodeWith(t, "full", service.Config{MaxDelayed: 1}, clientX("", x.Addr()))
	t.Cleanup(func() { full.close(t) }) // its drain would wait for the request it never answers
	startService(t, full, "math", func(a *service.Agent) error {
		a.Export("hold", func(r *service.Request) int {
			r.Delay() // never answered: the service is at its MaxDelayed
			return 0
		})
		a.Export("multiply", func(x, y int) int {
			v, _ := counts.LoadOrStore("full", new(int))
			*v.(*int)++
			return x * y
		})
		return nil
	})
	other := startNode(t, "other", clientX("", x.Addr()))
	countingMath(t, other, "math", "other", &counts)
	caller := startNode(t, "caller", clientX("", x.Addr()))
	bindings := visible(t, caller, "math", 2)
	var fullAddr service.Address
	for _, b := range bindings {
		if b.Node == "full" {
			fullAddr = b.Address
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := caller.rt().Call(ctx, fullAddr, "hold"); failureCode(err) != service.CodeTimedOut {
		t.Fatalf("hold: %v", err)
	}
	const calls = 100
	for range calls {
		mustMultiply(t, caller, service.Name("math"))
	}
	got := countsOf(&counts, "full", "other")
	if got["full"] != 0 || got["other"] != calls {
		t.Fatalf("%d calls over a replica refusing them before its handler and a working one ran %v; want all on the working one", calls, got)
	}
	// By address there is nowhere else to go: the refusal is the answer.
	if _, err := multiply(caller, fullAddr, 6, 7); failureCode(err) != service.CodeOverloaded {
		t.Fatalf("a call by address to the full replica: %v, want overloaded", err)
	}
}

// TestNoFailoverOnceRun: a request whose handler may have run is never
// sent again: its process's link is cut mid-handler, the call fails, and
// the other replica never sees it.
func TestNoFailoverOnceRun(t *testing.T) {
	x := startNode(t, "x", serverX("", listen(t)))
	var counts sync.Map
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	kit := &crashKit{}
	dying := startNode(t, "dying", clientX("", kit.via(t, x.Addr())))
	t.Cleanup(func() { close(release) }) // before the node stops (cleanups run last first)
	startService(t, dying, "math", func(a *service.Agent) error {
		a.Export("multiply", func(x, y int) int {
			v, _ := counts.LoadOrStore("dying", new(int))
			*v.(*int)++
			started <- struct{}{}
			<-release // answered only once its link is cut
			return x * y
		})
		return nil
	})
	caller := startNode(t, "caller", clientX("", x.Addr()))
	visible(t, caller, "math", 1)
	other := startNode(t, "other", clientX("", x.Addr()))
	countingMath(t, other, "math", "other", &counts)
	visible(t, caller, "math", 2)
	// Round-robin: of two calls one goes to each; the dying one's blocks.
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := multiply(caller, service.Name("math"), 6, 7)
			errs <- err
		}()
	}
	recv(t, started, waitLong, "the dying replica's handler to start")
	if err := recv(t, errs, waitLong, "the call to the other replica"); err != nil {
		t.Fatalf("the call to the working replica: %v", err)
	}
	kit.crash() // as if its process died: the links reset
	err := recv(t, errs, waitLong, "the call whose handler's process died")
	if code := failureCode(err); code != service.CodeLinkLost && code != service.CodeWithdrawn {
		t.Fatalf("a call whose handler's process died: %v, want link lost or withdrawn (never retried)", err)
	}
	if got := countsOf(&counts, "dying", "other"); got["dying"] != 1 || got["other"] != 1 {
		t.Fatalf("two calls, one of them cut mid-handler, ran %v; want one each (no retry of one that ran)", got)
	}
}

// TestCallWaitsForRelink: a call by name made while the caller's process
// is still linking to its server waits for the resync (at most a retry
// delay) instead of failing "no such service": here, right after
// node.Start, without WaitSynced, ten times over.
func TestCallWaitsForRelink(t *testing.T) {
	x := startNode(t, "x", serverX("", listen(t)))
	startMath(t, x, "math")
	for i := range 10 {
		// The wait is bounded by the retry delay: a second, for linking
		// to take under -race on a busy machine.
		xc := clientX("", x.Addr())
		xc.Retry = time.Second
		c := startNode(t, fmt.Sprintf("c%d", i), xc)
		seen := len(c.rt().Lookup("math"))
		if v, err := multiply(c, service.Name("math"), 6, 7); err != nil || v != 42 {
			t.Fatalf("a call right after Start (math seen %d times then): %d, %v", seen, v, err)
		}
		c.stop(t)
	}
}
