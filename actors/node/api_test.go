package node_test

// The smaller pieces of the service API, over real links: variadic
// methods, knowing a subscription is in place, and handing work to a
// service from outside it.

import (
	"context"
	"strings"
	"testing"

	"github.com/netsvc-go/netsvc/service"
)

func TestVariadicMethod(t *testing.T) {
	_, caller, host := twoClients(t)
	startService(t, host, "fmt", func(a *service.Agent) error {
		a.Export("join", func(sep string, words ...string) string { return strings.Join(words, sep) })
		return nil
	})
	visible(t, caller, "fmt", 1)
	for _, c := range []struct {
		args []any
		want string
	}{
		{[]any{"-"}, ""},
		{[]any{"-", "a"}, "a"},
		{[]any{", ", "a", "b", "c"}, "a, b, c"},
	} {
		got, err := service.CallFor[string](ctxFor(t, waitLong), caller.rt(), service.Name("fmt"), "join", c.args...)
		if err != nil || got != c.want {
			t.Fatalf("join%v = %q, %v; want %q", c.args, got, err, c.want)
		}
	}
	_, err := caller.rt().Call(ctxFor(t, waitLong), service.Name("fmt"), "join")
	if failureCode(err) != service.CodeBadArguments || !strings.Contains(err.Error(), "at least 1") {
		t.Fatalf("join() = %v, want bad arguments: at least 1", err)
	}
	_, err = caller.rt().Call(ctxFor(t, waitLong), service.Name("fmt"), "join", "-", "a", 7)
	if failureCode(err) != service.CodeBadArguments || !strings.Contains(err.Error(), "argument 3") {
		t.Fatalf("join(-, a, 7) = %v, want bad arguments naming argument 3", err)
	}
}

// TestInPlaceAndDo: a subscriber in another process learns when its
// subscription is in place, and then a publish made from outside the
// publisher (Runtime.Do) reaches it, every time.
func TestInPlaceAndDo(t *testing.T) {
	_, subProc, pubProc := twoClients(t)
	pub := startService(t, pubProc, "ticker", func(a *service.Agent) error { return nil })
	visible(t, subProc, "ticker", 1)
	for i := range 20 {
		inPlace := make(chan service.PublisherEvent, 1)
		got := make(chan string, 1)
		sub := startService(t, subProc, "", func(a *service.Agent) error {
			_, err := a.Subscribe(service.Name("ticker"), "tick", func(r service.Report) {
				var s string
				r.Payload.Decode(&s)
				got <- s
			}, service.OnInPlace(func(ev service.PublisherEvent) { inPlace <- ev }))
			return err
		})
		ev := recv(t, inPlace, waitLong, "the subscription to be in place")
		if ev.Publisher.Address != pub {
			t.Fatalf("in place at %v, want %v", ev.Publisher.Address, pub)
		}
		// No message type, no lock: the function runs in the publisher.
		if err := pubProc.rt().Do(ctxFor(t, waitLong), pub, func(a *service.Agent) {
			a.Publish("tick", "hello")
		}); err != nil {
			t.Fatal(err)
		}
		if s := recv(t, got, waitLong, "the report published once in place"); s != "hello" {
			t.Fatalf("round %d: got %q", i, s)
		}
		if err := subProc.rt().StopService(ctxFor(t, waitLong), sub); err != nil {
			t.Fatal(err)
		}
	}
	// Do on what is not a service of this process fails at once.
	err := subProc.rt().Do(context.Background(), pub, func(*service.Agent) {})
	if failureCode(err) != service.CodeNoSuchService {
		t.Fatalf("Do on another process's service: %v, want no such service", err)
	}
}
