package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/service"
)

// Rule 14/15: a synchronous call from outside any service.
func TestCallFromRuntime(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	addr := startMath(t, rt)
	product, err := service.CallFor[int](ctx, rt, service.Name("math"), "multiply", 6, 7)
	if err != nil || product != 42 {
		t.Fatalf("multiply by name: %d, %v", product, err)
	}
	res, err := rt.Call(ctx, addr, "add", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if res.ContentType != service.ContentCBOR {
		t.Fatalf("content type %q", res.ContentType)
	}
	if v := decode[int](t, res); v != 5 {
		t.Fatalf("add by address = %d", v)
	}
	s, err := service.CallFor[string](ctx, rt, addr, "echo", "héllo")
	if err != nil || s != "héllo" {
		t.Fatalf("echo: %q, %v", s, err)
	}
}

// A handler calls another service synchronously and sees who called it.
func TestCallFromHandler(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	senders := make(chan service.Address, 1)
	start(t, rt, "math", func(a *service.Agent) error {
		a.Export("multiply", func(ctx context.Context, x, y int) int {
			senders <- service.RequestOf(ctx).Sender()
			return x * y
		})
		return nil
	})
	front := start(t, rt, "front", func(a *service.Agent) error {
		a.Export("double", func(ctx context.Context, x int) (int, error) {
			return service.CallFor[int](ctx, a, service.Name("math"), "multiply", x, 2)
		})
		return nil
	})
	got, err := service.CallFor[int](ctx, rt, service.Name("front"), "double", 21)
	if err != nil || got != 42 {
		t.Fatalf("double: %d, %v", got, err)
	}
	if s := recv(t, senders, "sender"); s != front {
		t.Fatalf("math saw sender %v, want front %v", s, front)
	}
	// A runtime call's sender is the process itself (ID 0).
	if _, err := rt.Call(ctx, service.Name("math"), "multiply", 1, 1); err != nil {
		t.Fatal(err)
	}
	if s := recv(t, senders, "sender"); s != (service.Address{Process: rt.ProcessID()}) {
		t.Fatalf("runtime call sender = %v", s)
	}
}

// Agent.Request with Then, answering the original caller later.
func TestAsyncRequestThen(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	startMath(t, rt)
	start(t, rt, "front", func(a *service.Agent) error {
		a.Export("sum10", func(r *service.Request, x, y int) {
			d := r.Delay()
			p := a.Request(service.Name("math"), "add", x, y)
			if p.Conversation() == 0 {
				t.Error("Pending.Conversation() = 0")
			}
			p.Then(func(res service.Payload, err error) {
				if err != nil {
					_ = d.Fail(service.AsFailure(err))
					return
				}
				var v int
				if err := res.Decode(&v); err != nil {
					_ = d.Fail(service.AsFailure(err))
					return
				}
				_ = d.Reply(v * 10)
			})
		})
		return nil
	})
	got, err := service.CallFor[int](ctx, rt, service.Name("front"), "sum10", 2, 3)
	if err != nil || got != 50 {
		t.Fatalf("sum10: %d, %v", got, err)
	}
}

// Pending.Timeout fails an unanswered request with CodeTimedOut, and the
// late answer is dropped.
func TestAsyncRequestTimeout(t *testing.T) {
	rt := newRuntime(t)
	parked := make(chan service.Delayed, 1)
	slow := startProbe(t, rt, "slow", func(a *service.Agent) {
		a.Export("park", func(r *service.Request) { parked <- r.Delay() })
	})
	calls := make(chan error, 10)
	front := startProbe(t, rt, "front", nil)
	front.Do(func(a *service.Agent) {
		a.Request(slow.Addr, "park").Timeout(time.Hour).Timeout(30 * time.Millisecond).Then(func(_ service.Payload, err error) {
			calls <- err
		})
	})
	f := wantFailure(t, recv(t, calls, "timeout"), service.CodeTimedOut)
	if f.Origin != service.OriginRuntime {
		t.Fatalf("origin %q", f.Origin)
	}
	d := recv(t, parked, "parked request")
	slow.Do(func(a *service.Agent) {
		if err := d.Reply("too late"); err != nil {
			t.Errorf("late reply: %v", err)
		}
	})
	front.Do(func(*service.Agent) {}) // a late answer would be queued before this
	empty(t, calls, "callback for a late answer")
	slow.Do(func(*service.Agent) {}) // the service still serves
}

// Rule 15: delayed responses answered from a timer, with a failure, and
// by conversation id from another handler.
func TestDelayedResponses(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	parked := make(chan uint64, 10)
	start(t, rt, "later", func(a *service.Agent) error {
		var waiting []uint64
		a.Export("timer", func(r *service.Request, v string) {
			d := r.Delay()
			if d.Conversation() != r.Conversation() {
				t.Errorf("Delayed.Conversation %d != Request.Conversation %d", d.Conversation(), r.Conversation())
			}
			a.After(10*time.Millisecond, func() {
				if err := d.Reply("timer:" + v); err != nil {
					t.Errorf("reply: %v", err)
				}
				if err := d.Reply("twice"); err == nil {
					t.Error("a second reply to one request did not fail")
				}
			})
		})
		a.Export("fail", func(r *service.Request) string {
			d := r.Delay()
			a.After(time.Millisecond, func() { _ = d.Fail(service.Fail(service.CodeResponseAborted, "", "gave up")) })
			return "ignored: the request is delayed"
		})
		a.Export("failnil", func(r *service.Request) {
			d := r.Delay()
			_ = d.Fail(nil)
		})
		a.Export("ask", func(ctx context.Context) {
			r := service.RequestOf(ctx)
			r.Delay()
			waiting = append(waiting, r.Conversation())
			parked <- r.Conversation()
		})
		a.Export("release", func() (int, error) {
			for i, conv := range waiting {
				if err := a.Reply(conv, fmt.Sprintf("answer %d", i)); err != nil {
					return 0, err
				}
			}
			n := len(waiting)
			waiting = nil
			if err := a.Reply(12345, "nobody"); err == nil {
				return 0, errors.New("reply to an unknown conversation did not fail")
			}
			if err := a.FailRequest(12345, nil); err == nil {
				return 0, errors.New("failing an unknown conversation did not fail")
			}
			return n, nil
		})
		return nil
	})

	got, err := service.CallFor[string](ctx, rt, service.Name("later"), "timer", "x")
	if err != nil || got != "timer:x" {
		t.Fatalf("timer reply: %q, %v", got, err)
	}
	_, err = rt.Call(ctx, service.Name("later"), "fail")
	f := wantFailure(t, err, service.CodeResponseAborted)
	if f.Origin != "later" || f.Details != "gave up" || f.Description != service.CodeResponseAborted.String() {
		t.Fatalf("delayed failure = %+v", f)
	}
	_, err = rt.Call(ctx, service.Name("later"), "failnil")
	if f := wantFailure(t, err, service.CodeResponseAborted); f.Origin != "later" {
		t.Fatalf("nil failure: %+v", f)
	}

	results := make(chan string, 2)
	for range 2 {
		go func() {
			s, err := service.CallFor[string](ctx, rt, service.Name("later"), "ask")
			if err != nil {
				s = err.Error()
			}
			results <- s
		}()
	}
	c1, c2 := recv(t, parked, "first parked"), recv(t, parked, "second parked")
	if c1 == c2 {
		t.Fatalf("two requests share conversation %d", c1)
	}
	n, err := service.CallFor[int](ctx, rt, service.Name("later"), "release")
	if err != nil || n != 2 {
		t.Fatalf("release: %d, %v", n, err)
	}
	got1, got2 := recv(t, results, "first answer"), recv(t, results, "second answer")
	if !(got1 == "answer 0" && got2 == "answer 1" || got1 == "answer 1" && got2 == "answer 0") {
		t.Fatalf("answers %q, %q", got1, got2)
	}
}

// Abandon: no answer ever comes; the caller's deadline ends the call.
func TestAbandonEndsByCallerDeadline(t *testing.T) {
	rt := newRuntime(t)
	replyErr := make(chan error, 1)
	start(t, rt, "quitter", func(a *service.Agent) error {
		a.Export("ask", func(r *service.Request) {
			d := r.Delay()
			a.Abandon(d.Conversation())
			replyErr <- d.Reply("never")
		})
		return nil
	})
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := rt.Call(ctx, service.Name("quitter"), "ask")
	wantFailure(t, err, service.CodeTimedOut)
	if !errors.Is(err, service.ErrTimedOut) {
		t.Fatalf("errors.Is(ErrTimedOut) false for %v", err)
	}
	if d := time.Since(t0); d < 100*time.Millisecond {
		t.Fatalf("timed out after %v, before the deadline", d)
	}
	if err := recv(t, replyErr, "reply result"); err == nil {
		t.Fatal("reply after Abandon did not fail")
	}
}

// Rule 16: a *Failure from a handler reaches the caller with the origin
// filled in; any other error becomes CodeHandlerError.
func TestHandlerFailures(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	start(t, rt, "shop", func(a *service.Agent) error {
		a.Export("app", func() (int, error) { return 0, service.Fail(99, "out of stock", "item 7") })
		a.Export("foreign", func() error {
			return &service.Failure{Code: 98, Description: "upstream", Origin: "warehouse", Details: "d"}
		})
		a.Export("bare", func() error { return service.Fail(97, "", "") })
		a.Export("plain", func() error { return errors.New("boom") })
		a.Export("ok", func() error { return nil })
		return nil
	})
	_, err := rt.Call(ctx, service.Name("shop"), "app")
	f := wantFailure(t, err, 99)
	if *f != (service.Failure{Code: 99, Description: "out of stock", Origin: "shop", Details: "item 7"}) {
		t.Fatalf("application failure = %+v", f)
	}
	if f.Error() != "shop: out of stock (99): item 7" {
		t.Fatalf("Error() = %q", f.Error())
	}
	_, err = rt.Call(ctx, service.Name("shop"), "foreign")
	if f := wantFailure(t, err, 98); f.Origin != "warehouse" || f.Description != "upstream" {
		t.Fatalf("failure with an origin = %+v", f)
	}
	_, err = rt.Call(ctx, service.Name("shop"), "bare")
	if f := wantFailure(t, err, 97); f.Description != "code 97" || f.Origin != "shop" {
		t.Fatalf("bare failure = %+v", f)
	}
	_, err = rt.Call(ctx, service.Name("shop"), "plain")
	f = wantFailure(t, err, service.CodeHandlerError)
	if f.Origin != "shop" || f.Details != "boom" || f.Description != "handler error" {
		t.Fatalf("plain error = %+v", f)
	}
	if !errors.Is(err, service.ErrHandlerError) || errors.Is(err, service.ErrTimedOut) {
		t.Fatalf("errors.Is wrong for %v", err)
	}
	res, err := rt.Call(ctx, service.Name("shop"), "ok")
	if err != nil {
		t.Fatalf("nil error: %v", err)
	}
	if v, err := res.Value(); err != nil || v != nil {
		t.Fatalf("result of an error-only method: %v, %v", v, err)
	}
}

// A panicking handler fails its call; the service keeps its state and
// goes on serving.
func TestHandlerPanicKeepsServiceRunning(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	start(t, rt, "fragile", func(a *service.Agent) error {
		n := 0
		a.Export("inc", func() int { n++; return n })
		a.Export("explode", func() int {
			n++
			panic("kaboom")
		})
		return nil
	})
	if v, _ := service.CallFor[int](ctx, rt, service.Name("fragile"), "inc"); v != 1 {
		t.Fatalf("inc = %d", v)
	}
	_, err := rt.Call(ctx, service.Name("fragile"), "explode")
	f := wantFailure(t, err, service.CodeHandlerError)
	if f.Origin != "fragile" || !strings.Contains(f.Details, "explode panicked: kaboom") {
		t.Fatalf("panic failure = %+v", f)
	}
	v, err := service.CallFor[int](ctx, rt, service.Name("fragile"), "inc")
	if err != nil || v != 3 {
		t.Fatalf("after the panic: %d, %v; want 3", v, err)
	}
}

// Rules 16 and 34: the runtime's own failures, with stable codes and
// details that say what went wrong.
func TestRuntimeFailures(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	addr := startMath(t, rt)

	_, err := rt.Call(ctx, service.Name("nobody"), "x")
	f := wantFailure(t, err, service.CodeNoSuchService)
	if f.Origin != service.OriginRuntime || f.Description != "no such service" || !strings.Contains(f.Details, `"nobody"`) {
		t.Fatalf("no such service = %+v", f)
	}
	if !errors.Is(err, service.ErrNoSuchService) {
		t.Fatal("errors.Is(ErrNoSuchService) false")
	}
	_, err = rt.Call(ctx, service.Address{Process: rt.ProcessID(), ID: 9999}, "x")
	wantFailure(t, err, service.CodeNoSuchService)
	_, err = rt.Call(ctx, service.Address{Process: rt.ProcessID() + 1, ID: 1}, "x")
	wantFailure(t, err, service.CodeNoSuchService)
	_, err = rt.Call(ctx, service.Group("g"), "x")
	wantFailure(t, err, service.CodeNoSuchService)
	_, err = rt.Call(ctx, nil, "x")
	wantFailure(t, err, service.CodeBadTarget)
	_, err = rt.Call(ctx, service.AllServices, "x")
	wantFailure(t, err, service.CodeBadTarget)

	_, err = rt.Call(ctx, addr, "divide", 1, 2)
	f = wantFailure(t, err, service.CodeNoSuchMethod)
	if f.Origin != service.OriginRuntime || !strings.Contains(f.Details, `"divide"`) || !errors.Is(err, service.ErrNoSuchMethod) {
		t.Fatalf("no such method = %+v", f)
	}

	_, err = rt.Call(ctx, addr, "multiply", 1, 2, 3)
	f = wantFailure(t, err, service.CodeBadArguments)
	if f.Details != "multiply: expected 2 arguments, received 3" {
		t.Fatalf("too many arguments: details %q", f.Details)
	}
	_, err = rt.Call(ctx, addr, "multiply", 1)
	if f := wantFailure(t, err, service.CodeBadArguments); f.Details != "multiply: expected 2 arguments, received 1" {
		t.Fatalf("too few arguments: details %q", f.Details)
	}
	_, err = rt.Call(ctx, addr, "multiply", "six", 7)
	f = wantFailure(t, err, service.CodeBadArguments)
	if !strings.Contains(f.Details, "argument 1") || !errors.Is(err, service.ErrBadArguments) {
		t.Fatalf("wrong argument type: %+v", f)
	}
	_, err = rt.Call(ctx, addr, "multiply", 6, []string{"seven"})
	if f := wantFailure(t, err, service.CodeBadArguments); !strings.Contains(f.Details, "argument 2") {
		t.Fatalf("wrong second argument: %+v", f)
	}
	_, err = rt.Call(ctx, addr, "multiply", service.Raw{ContentType: "text/plain", Data: []byte("6*7")})
	wantFailure(t, err, service.CodeBadArguments)
	_, err = rt.Call(ctx, addr, "multiply", make(chan int), 1) // cannot be encoded
	wantFailure(t, err, service.CodeBadArguments)

	_, err = service.CallFor[int](ctx, rt, addr, "echo", "not a number")
	wantFailure(t, err, service.CodeResponseDecoding)

	// The service is unharmed.
	if v, err := service.CallFor[int](ctx, rt, addr, "multiply", 6, 7); err != nil || v != 42 {
		t.Fatalf("after the failures: %d, %v", v, err)
	}
	stop(t, rt, addr)
	_, err = rt.Call(ctx, addr, "multiply", 6, 7)
	wantFailure(t, err, service.CodeNoSuchService)
}

// CodePayloadTooLarge for arguments, results, reports and messages.
func TestPayloadTooLarge(t *testing.T) {
	rt := newRuntime(t, service.Config{MaxPayload: 256})
	ctx := testCtx(t)
	if rt.Kernel().MaxPayload() != 256 {
		t.Fatalf("MaxPayload() = %d", rt.Kernel().MaxPayload())
	}
	big := strings.Repeat("x", 1000)
	var served atomic.Int32
	svc := startProbe(t, rt, "big", func(a *service.Agent) {
		a.Export("take", func(s string) int { served.Add(1); return len(s) })
		a.Export("give", func() string { return big })
	})
	_, err := rt.Call(ctx, svc.Addr, "take", big)
	f := wantFailure(t, err, service.CodePayloadTooLarge)
	if f.Origin != service.OriginRuntime || !strings.Contains(f.Details, "256") || !errors.Is(err, service.ErrPayloadTooLarge) {
		t.Fatalf("large arguments: %+v", f)
	}
	if served.Load() != 0 {
		t.Fatal("the handler ran for arguments over the limit")
	}
	_, err = rt.Call(ctx, svc.Addr, "give")
	wantFailure(t, err, service.CodePayloadTooLarge)
	if n, err := service.CallFor[int](ctx, rt, svc.Addr, "take", "small"); err != nil || n != 5 {
		t.Fatalf("small call: %d, %v", n, err)
	}
	fails := make(chan error, 1)
	svc.Do(func(a *service.Agent) {
		if err := a.Publish("big.report", big); !errors.Is(err, service.ErrPayloadTooLarge) {
			t.Errorf("Publish over the limit: %v", err)
		}
		if err := a.SendMessage(svc.Addr, "big", "", big, 1); !errors.Is(err, service.ErrPayloadTooLarge) {
			t.Errorf("SendMessage over the limit: %v", err)
		}
		a.Request(svc.Addr, "take", big).Then(func(_ service.Payload, err error) { fails <- err })
	})
	wantFailure(t, recv(t, fails, "async failure"), service.CodePayloadTooLarge)
	if served.Load() != 1 { // the small call only
		t.Fatal("the handler ran for arguments over the limit")
	}
}

// Rule 17: a service stopped while a request waits fails the caller at
// once with CodeWithdrawn, long before the call would time out.
func TestServiceStoppedMidRequestFailsCallerAtOnce(t *testing.T) {
	rt := newRuntime(t, service.Config{CallTimeout: 20 * time.Second})
	entered := make(chan struct{}, 2)
	parker := start(t, rt, "parker", func(a *service.Agent) error {
		a.Export("park", func(r *service.Request) {
			r.Delay()
			entered <- struct{}{}
		})
		return nil
	})
	syncErr := make(chan error, 1)
	go func() {
		_, err := rt.Call(context.Background(), service.Name("parker"), "park")
		syncErr <- err
	}()
	asyncErr := make(chan error, 1)
	caller := startProbe(t, rt, "", nil)
	caller.Do(func(a *service.Agent) {
		a.Request(parker, "park").Then(func(_ service.Payload, err error) { asyncErr <- err })
	})
	recv(t, entered, "first request parked")
	recv(t, entered, "second request parked")

	t0 := time.Now()
	stop(t, rt, parker)
	for _, ch := range []chan error{syncErr, asyncErr} {
		select {
		case err := <-ch:
			f := wantFailure(t, err, service.CodeWithdrawn)
			if !strings.Contains(f.Details, "withdrawn before the response arrived") || f.Origin != service.OriginRuntime {
				t.Fatalf("withdrawal failure = %+v", f)
			}
			if !errors.Is(err, service.ErrWithdrawn) {
				t.Fatal("errors.Is(ErrWithdrawn) false")
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the waiting caller was not failed within 2s of the withdrawal")
		}
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("failure took %v", d)
	}
}

// Context deadline → CodeTimedOut, cancel → CodeCancelled, and
// Config.CallTimeout when the context has no deadline.
func TestCallDeadlinesAndCancellation(t *testing.T) {
	rt := newRuntime(t, service.Config{CallTimeout: 80 * time.Millisecond})
	entered := make(chan struct{}, 10)
	start(t, rt, "slow", func(a *service.Agent) error {
		a.Export("park", func(r *service.Request) {
			r.Delay()
			entered <- struct{}{}
		})
		a.Export("fast", func() int { return 1 })
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	_, err := rt.Call(ctx, service.Name("slow"), "park")
	cancel()
	wantFailure(t, err, service.CodeTimedOut)
	recv(t, entered, "park")

	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		<-entered
		cancel()
	}()
	_, err = rt.Call(ctx, service.Name("slow"), "park")
	wantFailure(t, err, service.CodeCancelled)
	if !errors.Is(err, service.ErrCancelled) {
		t.Fatal("errors.Is(ErrCancelled) false")
	}

	t0 := time.Now()
	_, err = rt.Call(context.Background(), service.Name("slow"), "park")
	f := wantFailure(t, err, service.CodeTimedOut)
	if d := time.Since(t0); d < 80*time.Millisecond || d > 5*time.Second {
		t.Fatalf("CallTimeout of 80ms ended the call after %v", d)
	}
	if !strings.Contains(f.Details, "80ms") {
		t.Fatalf("details %q do not name the timeout", f.Details)
	}
	recv(t, entered, "park")

	// A context deadline longer than CallTimeout wins over it.
	go func() {
		<-entered
	}()
	t0 = time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = rt.Call(ctx, service.Name("slow"), "park")
	wantFailure(t, err, service.CodeTimedOut)
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Fatalf("a 300ms context deadline ended after %v", d)
	}

	// An already cancelled context fails at once; the service still works.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	_, err = rt.Call(done, service.Name("slow"), "fast")
	if err != nil {
		// The answer may win the race with the cancelled context; if
		// not, the call says it was cancelled.
		wantFailure(t, err, service.CodeCancelled)
	}
	if v, err := service.CallFor[int](testCtx(t), rt, service.Name("slow"), "fast"); err != nil || v != 1 {
		t.Fatalf("fast: %d, %v", v, err)
	}
}

// Rule 31: Cancel delivers the caller's failure to its own callback and
// drops the late answer; CancelAll cancels every outstanding request.
func TestCancelRequests(t *testing.T) {
	rt := newRuntime(t)
	parked := make(chan service.Delayed, 10)
	slow := startProbe(t, rt, "slow", func(a *service.Agent) {
		a.Export("park", func(r *service.Request) { parked <- r.Delay() })
	})
	type outcome struct {
		tag int
		err error
	}
	outcomes := make(chan outcome, 10)
	caller := startProbe(t, rt, "", nil)
	var conv uint64
	caller.Do(func(a *service.Agent) {
		conv = a.Request(slow.Addr, "park").Then(func(_ service.Payload, err error) {
			outcomes <- outcome{1, err}
		}).Conversation()
	})
	d := recv(t, parked, "parked request")
	caller.Do(func(a *service.Agent) {
		if !a.Cancel(conv, service.Fail(99, "changed my mind", "test")) {
			t.Error("Cancel of an outstanding request returned false")
		}
		if a.Cancel(conv, nil) {
			t.Error("second Cancel returned true")
		}
		if a.Cancel(424242, nil) {
			t.Error("Cancel of an unknown conversation returned true")
		}
	})
	o := recv(t, outcomes, "cancelled callback")
	if f := wantFailure(t, o.err, 99); o.tag != 1 || f.Description != "changed my mind" || f.Details != "test" {
		t.Fatalf("cancel outcome %+v", o)
	}
	slow.Do(func(a *service.Agent) {
		if err := d.Reply("late"); err != nil {
			t.Errorf("late reply: %v", err)
		}
	})
	caller.Do(func(*service.Agent) {}) // a delivered late answer would be handled before this
	empty(t, outcomes, "callback after cancel")

	// CancelAll, with the default failure.
	caller.Do(func(a *service.Agent) {
		for i := 2; i <= 4; i++ {
			a.Request(slow.Addr, "park").Then(func(_ service.Payload, err error) { outcomes <- outcome{i, err} })
		}
	})
	ds := recvN(t, parked, 3, "parked request")
	caller.Do(func(a *service.Agent) {
		if n := a.CancelAll(nil); n != 3 {
			t.Errorf("CancelAll = %d, want 3", n)
		}
		if n := a.CancelAll(nil); n != 0 {
			t.Errorf("second CancelAll = %d, want 0", n)
		}
	})
	seen := map[int]bool{}
	for _, o := range recvN(t, outcomes, 3, "cancelled callback") {
		wantFailure(t, o.err, service.CodeCancelled)
		seen[o.tag] = true
	}
	if len(seen) != 3 {
		t.Fatalf("callbacks ran for %v", seen)
	}
	slow.Do(func(a *service.Agent) {
		for _, d := range ds {
			_ = d.Reply("late")
		}
	})
	caller.Do(func(*service.Agent) {})
	empty(t, outcomes, "callback after CancelAll")
}

// A request that cannot be sent fails through its callback, after the
// current handler returns.
func TestRequestToMissingServiceFailsAsync(t *testing.T) {
	rt := newRuntime(t)
	errs := make(chan error, 1)
	caller := startProbe(t, rt, "", nil)
	caller.Do(func(a *service.Agent) {
		handlerDone := false
		p := a.Request(service.Name("nobody"), "x").Timeout(time.Hour)
		p.Then(func(_ service.Payload, err error) {
			if !handlerDone {
				t.Error("callback ran inside the handler that sent the request")
			}
			errs <- err
		})
		handlerDone = true
	})
	f := wantFailure(t, recv(t, errs, "failure"), service.CodeNoSuchService)
	if !strings.Contains(f.Details, "nobody") {
		t.Fatalf("details %q", f.Details)
	}
}

// A handler's context is its Request.
func TestRequestAccessors(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	type info struct {
		Method, Agent string
		Sender        service.Address
		Conv          uint64
		Deadline      time.Time
		HasDeadline   bool
		Done          bool
		Err           error
		Value         any
	}
	infos := make(chan info, 1)
	addr := start(t, rt, "acc", func(a *service.Agent) error {
		a.Export("info", func(ctx context.Context, x int) int {
			r := service.RequestOf(ctx)
			dl, has := ctx.Deadline()
			infos <- info{r.Method(), r.Agent().Name(), r.Sender(), r.Conversation(), dl, has, ctx.Done() != nil, ctx.Err(), ctx.Value("k")}
			return x
		})
		return nil
	})
	if _, err := rt.Call(ctx, addr, "info", 1); err != nil {
		t.Fatal(err)
	}
	i := recv(t, infos, "request info")
	callerDeadline, _ := ctx.Deadline()
	if i.Method != "info" || i.Agent != "acc" || i.Sender != (service.Address{Process: rt.ProcessID()}) || i.Conv == 0 ||
		!i.HasDeadline || !i.Deadline.Equal(callerDeadline) || !i.Done || i.Err != nil || i.Value != nil {
		t.Fatalf("request info = %+v; want the caller's deadline %v, a Done channel, no error", i, callerDeadline)
	}
	if service.RequestOf(context.Background()) != nil {
		t.Fatal("RequestOf(Background) != nil")
	}
}

// A bad Export signature makes Start fail.
func TestExportBadSignatures(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	bad := map[string]any{
		"not a func":    42,
		"nil func":      (func())(nil),
		"three results": func() (int, int, error) { return 0, 0, nil },
		"second result": func() (int, int) { return 0, 0 },
		"late context":  func(x int, ctx context.Context) {},
	}
	for what, fn := range bad {
		_, err := rt.Start(ctx, "bad", service.SetupFunc(func(a *service.Agent) error {
			a.Export("m", fn)
			return nil
		}))
		if err == nil || !strings.Contains(err.Error(), `export "m"`) {
			t.Errorf("%s: Start error %v", what, err)
		}
	}
	if l := rt.Lookup("bad"); len(l) != 0 {
		t.Fatalf("a service that failed to start is listed: %v", l)
	}
}

// Handlers of one service never run concurrently: an unsynchronised
// counter stays exact under many concurrent callers (run with -race).
func TestHandlersNeverRunConcurrently(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	var inFlight, overlaps atomic.Int32
	enter := func() func() {
		if inFlight.Add(1) > 1 {
			overlaps.Add(1)
		}
		return func() { inFlight.Add(-1) }
	}
	counter := start(t, rt, "counter", func(a *service.Agent) error {
		n, ticks := 0, 0 // touched by handlers and a timer, unsynchronised
		a.Export("inc", func() int {
			defer enter()()
			n++
			return n
		})
		a.Export("get", func() int {
			defer enter()()
			return n
		})
		a.Every(time.Millisecond, func() {
			defer enter()()
			ticks++
			_ = n + ticks
		})
		return nil
	})
	const callers, calls = 16, 150
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				if _, err := rt.Call(ctx, counter, "inc"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Services calling asynchronously too.
	for range 4 {
		p := startProbe(t, rt, "", nil)
		p.Do(func(a *service.Agent) {
			for range calls {
				a.Request(counter, "inc").Then(func(_ service.Payload, err error) {
					if err != nil {
						t.Errorf("async inc: %v", err)
					}
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := callers*calls + 4*calls
	waitFor(t, waitTimeout, "every increment", func() bool {
		n, err := service.CallFor[int](ctx, rt, counter, "get")
		return err == nil && n == want
	})
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("%d handlers overlapped", n)
	}
}

// A handler's context may be used from several goroutines at once, as
// any context (run with -race).
func TestRequestContextFromGoroutines(t *testing.T) {
	rt := newRuntime(t)
	ctx := testCtx(t)
	addr := start(t, rt, "fan", func(a *service.Agent) error {
		a.Export("fan", func(ctx context.Context) (int, error) {
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-ctx.Done()
					_ = ctx.Err()
				}()
			}
			wg.Wait() // the caller's deadline ends them all
			return 0, ctx.Err()
		})
		return nil
	})
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := rt.Call(short, addr, "fan"); err == nil {
		t.Fatal("the call outlived its deadline")
	}
}
