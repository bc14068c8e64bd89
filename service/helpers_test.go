package service_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/service"
)

// waitTimeout bounds every wait in these tests: long enough for a loaded
// machine under -race, short enough that a hang fails quickly.
const waitTimeout = 5 * time.Second

// newRuntime starts a runtime that is closed when the test ends.
func newRuntime(t testing.TB, cfg ...service.Config) *service.Runtime {
	t.Helper()
	var c service.Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	if c.Node == "" {
		c.Node = "test"
	}
	rt, err := service.NewRuntime(c)
	if err != nil {
		t.Fatalf("NewRuntime: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rt
}

// testCtx returns a context that ends with the test or after waitTimeout.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// recv takes the next value from ch, failing the test after waitTimeout.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// recvN takes n values from ch.
func recvN[T any](t testing.TB, ch <-chan T, n int, what string) []T {
	t.Helper()
	out := make([]T, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, recv(t, ch, fmt.Sprintf("%s (%d of %d)", what, i+1, n)))
	}
	return out
}

// empty fails the test when ch holds a value. Call it only after a
// barrier that guarantees anything sent before it has arrived.
func empty[T any](t testing.TB, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %+v", what, v)
	default:
	}
}

// start runs a service built from setup and fails the test on error.
func start(t testing.TB, rt *service.Runtime, name string, setup func(a *service.Agent) error, opts ...service.Option) service.Address {
	t.Helper()
	addr, err := rt.Start(testCtx(t), name, service.SetupFunc(setup), opts...)
	if err != nil {
		t.Fatalf("start %q: %v", name, err)
	}
	return addr
}

// stop stops a local service and fails the test on error.
func stop(t testing.TB, rt *service.Runtime, addr service.Address) {
	t.Helper()
	if err := rt.StopService(testCtx(t), addr); err != nil {
		t.Fatalf("stop %s: %v", addr, err)
	}
}

// startMath starts "math" with multiply, add and echo.
func startMath(t testing.TB, rt *service.Runtime) service.Address {
	t.Helper()
	return start(t, rt, "math", func(a *service.Agent) error {
		a.Export("multiply", func(x, y int) int { return x * y })
		a.Export("add", func(x, y int) (int, error) { return x + y, nil })
		a.Export("echo", func(s string) string { return s })
		return nil
	})
}

// wantFailure checks that err is a *service.Failure with the code.
func wantFailure(t testing.TB, err error, code service.Code) *service.Failure {
	t.Helper()
	if err == nil {
		t.Fatalf("want failure %d (%v), got no error", code, code)
	}
	var f *service.Failure
	if !errors.As(err, &f) {
		t.Fatalf("want *service.Failure %d, got %T: %v", code, err, err)
	}
	if f.Code != code {
		t.Fatalf("want failure code %d (%v), got %d: %v", code, code, f.Code, f)
	}
	return f
}

// decode decodes a payload as a T.
func decode[T any](t testing.TB, p service.Payload) T {
	t.Helper()
	var v T
	if err := p.Decode(&v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	return v
}

// execMethod is the method probes export to run test code inside them.
const execMethod = "test.exec"

// probe is a service the test can run code inside, one function at a
// time, as if from one of its handlers.
type probe struct {
	t    testing.TB
	rt   *service.Runtime
	Addr service.Address
	mu   sync.Mutex
	fn   func(a *service.Agent)
}

// startProbe starts a probe named name ("" for an anonymous one); setup,
// when not nil, runs in its Setup.
func startProbe(t testing.TB, rt *service.Runtime, name string, setup func(a *service.Agent), opts ...service.Option) *probe {
	t.Helper()
	p := &probe{t: t, rt: rt}
	p.Addr = start(t, rt, name, func(a *service.Agent) error {
		a.Export(execMethod, func() { p.fn(a) })
		if setup != nil {
			setup(a)
		}
		return nil
	}, opts...)
	return p
}

// Do runs fn inside the probe and returns once it has. Everything sent
// to the probe before Do was called has been handled by then.
func (p *probe) Do(fn func(a *service.Agent)) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn = fn
	if _, err := p.rt.Call(testCtx(p.t), p.Addr, execMethod); err != nil {
		p.t.Fatalf("probe %s: %v", p.Addr, err)
	}
}

// event is a registry event reduced to what tests compare.
type event struct {
	Kind  service.EventKind
	Name  string
	Addr  service.Address
	Group string
}

func (e event) String() string {
	s := fmt.Sprintf("%v %s(%v)", e.Kind, e.Name, e.Addr.ID)
	if e.Group != "" {
		s += " " + e.Group
	}
	return s
}

func toEvent(ev service.RegistryEvent) event {
	return event{Kind: ev.Kind, Name: ev.Binding.Name, Addr: ev.Binding.Address, Group: ev.Group}
}

// eventSink returns a watch handler that sends events to a channel.
func eventSink() (chan event, func(service.RegistryEvent)) {
	ch := make(chan event, 1000)
	return ch, func(ev service.RegistryEvent) { ch <- toEvent(ev) }
}

// wantEvents takes len(want) events and compares them in order.
func wantEvents(t testing.TB, ch <-chan event, want ...event) {
	t.Helper()
	got := recvN(t, ch, len(want), "registry event")
	if !slices.Equal(got, want) {
		t.Fatalf("registry events:\n got %v\nwant %v", got, want)
	}
}

func avail(name string, a service.Address) event {
	return event{Kind: service.Available, Name: name, Addr: a}
}

func withdrawn(name string, a service.Address) event {
	return event{Kind: service.Withdrawn, Name: name, Addr: a}
}

func joined(name string, a service.Address, g string) event {
	return event{Kind: service.Joined, Name: name, Addr: a, Group: g}
}

func left(name string, a service.Address, g string) event {
	return event{Kind: service.Left, Name: name, Addr: a, Group: g}
}

// addrs returns the addresses of bindings.
func addrs(bs []service.Binding) []service.Address {
	out := make([]service.Address, len(bs))
	for i, b := range bs {
		out[i] = b.Address
	}
	return out
}
