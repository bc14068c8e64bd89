package node_test

// Deadlines travel and callers' giving up reaches the handler (rules 17
// and 31), over real links: caller and service in two client processes
// linked through a server.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// twoClients starts a server and two client processes linked to it.
func twoClients(t *testing.T) (x, caller, host *proc) {
	x = startNode(t, "x", serverX("", listen(t)))
	host = startNode(t, "host", clientX("", x.Addr()))
	caller = startNode(t, "caller", clientX("", x.Addr()))
	return x, caller, host
}

type ended struct {
	deadline time.Time
	has      bool
	err      error
	at       time.Time
}

// TestDeadlineTravels: the handler's context has the caller's deadline,
// counted from the time left when sent, and ends when it passes.
func TestDeadlineTravels(t *testing.T) {
	_, caller, host := twoClients(t)
	seen := make(chan ended, 1)
	startService(t, host, "waiter", func(a *service.Agent) error {
		a.Export("wait", func(ctx context.Context) (int, error) {
			dl, has := ctx.Deadline()
			<-ctx.Done() // bounded: the deadline ends it
			seen <- ended{dl, has, ctx.Err(), time.Now()}
			return 0, ctx.Err()
		})
		return nil
	})
	visible(t, caller, "waiter", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	want, _ := ctx.Deadline()
	// Timed out here, or (as the handler's deadline passes at the same
	// moment) the handler's failure saying so first.
	if _, err := caller.rt().Call(ctx, service.Name("waiter"), "wait"); err == nil {
		t.Fatal("a call past its deadline succeeded")
	}
	got := recv(t, seen, waitLong, "the handler's context to end")
	if !got.has || got.err != context.DeadlineExceeded {
		t.Fatalf("handler context: deadline %v (set %v), err %v; want the caller's, DeadlineExceeded", got.deadline, got.has, got.err)
	}
	// Sent as the time left, counted again on arrival: later than the
	// caller's by the time in transit, never earlier by more than clock
	// rounding (a microsecond).
	if skew := got.deadline.Sub(want); skew < -time.Millisecond || skew > time.Second {
		t.Fatalf("the handler's deadline is %v off the caller's", skew)
	}
	t.Logf("handler deadline %v after the caller's; its context ended %v after the caller's deadline",
		got.deadline.Sub(want), got.at.Sub(want).Round(time.Millisecond))
}

// TestCancelReachesHandler: a caller that cancels (no deadline of its
// own: the runtime's 30 s call timeout) ends the handler's context at
// once, through the cancel frame.
func TestCancelReachesHandler(t *testing.T) {
	_, caller, host := twoClients(t)
	seen := make(chan ended, 1)
	started := make(chan struct{}, 1)
	startService(t, host, "waiter", func(a *service.Agent) error {
		a.Export("wait", func(ctx context.Context) int {
			started <- struct{}{}
			select {
			case <-ctx.Done():
			case <-time.After(waitLong):
			}
			seen <- ended{err: ctx.Err(), at: time.Now()}
			return 0
		})
		return nil
	})
	visible(t, caller, "waiter", 1)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := caller.rt().Call(ctx, service.Name("waiter"), "wait")
		errc <- err
	}()
	recv(t, started, waitLong, "the handler to start")
	// The console's tree shows what the service serves and how long its
	// caller still waits (the runtime's 30 s call timeout here).
	var detail map[string]any
	for _, a := range host.rt().Kernel().Tree().Snapshot() {
		if a.Kind == registry.KindService && a.Name == "waiter" {
			detail = a.Detail
		}
	}
	if left, _ := detail["deadline_in_s"].(float64); detail["serving"] != "wait" || left <= 20 || left > 30 {
		t.Errorf("the tree shows %v; want serving wait, about 30 s left", detail)
	}
	cancelled := time.Now()
	cancel()
	if err := recv(t, errc, waitLong, "the call to end"); failureCode(err) != service.CodeCancelled {
		t.Fatalf("cancelled call: %v, want cancelled", err)
	}
	got := recv(t, seen, waitLong, "the handler's context to end")
	if got.err != context.Canceled {
		t.Fatalf("the handler's context ended with %v, want Canceled (from the caller's cancel)", got.err)
	}
	t.Logf("the handler's context ended %v after its caller cancelled, two links away", got.at.Sub(cancelled).Round(time.Microsecond))
}

// TestSyncCycleEndsWithOutermostCaller: A calls B, which calls A back,
// both synchronously. Before deadlines travelled A stayed blocked for
// the 30 s call timeout and every other call to A waited behind it;
// now the cycle ends when its outermost caller gives up.
func TestSyncCycleEndsWithOutermostCaller(t *testing.T) {
	x, caller, host := twoClients(t)
	other := startNode(t, "other", clientX("", x.Addr()))
	startService(t, host, "A", func(a *service.Agent) error {
		a.Export("outer", func(ctx context.Context) (int, error) {
			p, err := a.Call(ctx, service.Name("B"), "inner")
			if err != nil {
				return 0, err
			}
			var v int
			return v, p.Decode(&v)
		})
		a.Export("ping", func() int { return 1 })
		return nil
	})
	startService(t, other, "B", func(a *service.Agent) error {
		a.Export("inner", func(ctx context.Context) (int, error) {
			p, err := a.Call(ctx, service.Name("A"), "ping") // A is busy in outer: a cycle
			if err != nil {
				return 0, err
			}
			var v int
			return v, p.Decode(&v)
		})
		return nil
	})
	visible(t, caller, "A", 1)
	visible(t, caller, "B", 1)
	visible(t, other, "A", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := caller.rt().Call(ctx, service.Name("A"), "outer")
	gaveUp := time.Now()
	if failureCode(err) != service.CodeTimedOut {
		t.Fatalf("the cycle's outer call: %v, want timed out", err)
	}
	// A is free again long before the 30 s call timeout.
	var freed time.Duration
	nodetest.WaitFor(t, 5*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := caller.rt().Call(ctx, service.Name("A"), "ping"); err != nil {
			return fmt.Errorf("A still busy: %v", err)
		}
		freed = time.Since(gaveUp)
		return nil
	})
	t.Logf("A answered again %v after the cycle's outermost caller gave up (before: after the 30 s call timeout)", freed.Round(time.Microsecond))
}

// TestExpiredRequestNotRun: a request whose caller gave up while it
// waited behind a busy handler is not run when its turn comes.
func TestExpiredRequestNotRun(t *testing.T) {
	_, caller, host := twoClients(t)
	var runs atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	startService(t, host, "slow", func(a *service.Agent) error {
		a.Export("block", func() int {
			started <- struct{}{}
			<-release
			return 0
		})
		a.Export("count", func() int { return int(runs.Add(1)) })
		return nil
	})
	visible(t, caller, "slow", 1)
	blocked := make(chan error, 1)
	go func() {
		_, err := caller.rt().Call(ctxFor(t, waitLong), service.Name("slow"), "block")
		blocked <- err
	}()
	recv(t, started, waitLong, "the blocking handler to start")
	// Two requests that give up while queued: one by deadline, one by
	// cancel.
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	if _, err := caller.rt().Call(short, service.Name("slow"), "count"); failureCode(err) != service.CodeTimedOut {
		t.Fatalf("queued call past its deadline: %v", err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := caller.rt().Call(cancelled, service.Name("slow"), "count"); !errors.Is(err, service.ErrCancelled) {
		t.Fatalf("queued call cancelled: %v", err)
	}
	// The cancel crosses two links; the deadline needs nothing.
	nodetest.WaitFor(t, waitLong, func() error {
		if n := host.rt().Kernel().Stats().CancelsWaiting; n != 1 {
			return fmt.Errorf("%d cancels wait at the service's process, want 1", n)
		}
		return nil
	})
	close(release)
	if err := recv(t, blocked, waitLong, "the blocking call"); err != nil {
		t.Fatal(err)
	}
	// The next count is the first run of count.
	n, err := service.CallFor[int](ctxFor(t, waitLong), caller.rt(), service.Name("slow"), "count")
	if err != nil || n != 1 {
		t.Fatalf("count after two abandoned requests = %d, %v; want 1 (they never ran)", n, err)
	}
	if n := host.rt().Kernel().Stats().CancelsWaiting; n != 0 {
		t.Fatalf("%d cancels still held once their request was passed over", n)
	}
}
