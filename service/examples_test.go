package service_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/netsvc-go/netsvc/service"
)

// A publisher keeps the last price of each stock; a subscriber arriving
// later gets the kept prices first, then live ones. "prices.*" matches
// one word after "prices.", so prices.nyse.ibm is not delivered.
func ExampleAgent_Publish() {
	ctx := context.Background()
	rt, err := service.NewRuntime(service.Config{})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	_, err = rt.Start(ctx, "prices", service.SetupFunc(func(a *service.Agent) error {
		_ = a.PublishRetained("prices.ibm", 101.5, service.Forever)
		a.OnSubscription(func(ev service.SubscriptionEvent) {
			if ev.Subscribed {
				_ = a.Publish("prices.ibm", 102.25)
				_ = a.Publish("prices.nyse.ibm", 99.0)
				_ = a.Publish("prices.msft", 400.0)
			}
		})
		return nil
	}))
	if err != nil {
		panic(err)
	}

	reports := make(chan service.Report, 10)
	_, err = rt.Start(ctx, "", service.SetupFunc(func(a *service.Agent) error {
		_, err := a.Subscribe(service.Name("prices"), "prices.*", func(r service.Report) { reports <- r })
		return err
	}))
	if err != nil {
		panic(err)
	}
	for range 3 {
		r := <-reports
		var price float64
		_ = r.Decode(&price)
		fmt.Println(r.Subject, r.Pattern, price)
	}
	// Output:
	// prices.ibm prices.* 101.5
	// prices.ibm prices.* 102.25
	// prices.msft prices.* 400
}

// A registry watch on a service group tells of joins and leaves; a
// service withdrawn leaves its groups.
func ExampleAgent_Watch() {
	ctx := context.Background()
	rt, err := service.NewRuntime(service.Config{})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	events := make(chan service.RegistryEvent, 10)
	_, err = rt.Start(ctx, "", service.SetupFunc(func(a *service.Agent) error {
		a.Watch(service.Group("workers"), func(ev service.RegistryEvent) { events <- ev })
		return nil
	}))
	if err != nil {
		panic(err)
	}
	w, err := rt.Start(ctx, "worker", service.SetupFunc(func(a *service.Agent) error {
		a.JoinGroup("workers")
		return nil
	}))
	if err != nil {
		panic(err)
	}
	_ = rt.StopService(ctx, w)
	for range 2 {
		ev := <-events
		fmt.Println(ev.Kind, ev.Binding.Name, ev.Group)
	}
	// Output:
	// joined worker workers
	// left worker workers
}

// A handler can answer later: here from a timer, through the Delayed
// its Request gave it.
func ExampleRequest_Delay() {
	ctx := context.Background()
	rt, err := service.NewRuntime(service.Config{})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	_, err = rt.Start(ctx, "oracle", service.SetupFunc(func(a *service.Agent) error {
		a.Export("ask", func(r *service.Request, question string) {
			d := r.Delay()
			a.After(10*time.Millisecond, func() { _ = d.Reply("42, as to " + question) })
		})
		return nil
	}))
	if err != nil {
		panic(err)
	}
	answer, err := service.CallFor[string](ctx, rt, service.Name("oracle"), "ask", "everything")
	fmt.Println(answer, err)
	// Output: 42, as to everything <nil>
}

// A service calls another without blocking and answers its own caller
// when the answer arrives.
func ExampleAgent_Request() {
	ctx := context.Background()
	rt, err := service.NewRuntime(service.Config{})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	_, _ = rt.Start(ctx, "math", service.SetupFunc(func(a *service.Agent) error {
		a.Export("multiply", func(x, y int) int { return x * y })
		return nil
	}))
	_, _ = rt.Start(ctx, "front", service.SetupFunc(func(a *service.Agent) error {
		a.Export("square", func(r *service.Request, x int) {
			d := r.Delay()
			a.Request(service.Name("math"), "multiply", x, x).Timeout(time.Second).Then(func(res service.Payload, err error) {
				if err != nil {
					_ = d.Fail(service.AsFailure(err))
					return
				}
				var v int
				_ = res.Decode(&v)
				_ = d.Reply(v)
			})
		})
		return nil
	}))
	v, err := service.CallFor[int](ctx, rt, service.Name("front"), "square", 12)
	fmt.Println(v, err)
	// Output: 144 <nil>
}

// Failures carry a stable code; errors.As gets the details and
// errors.Is compares codes.
func ExampleFailure() {
	ctx := context.Background()
	rt, err := service.NewRuntime(service.Config{})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	_, _ = rt.Start(ctx, "math", service.SetupFunc(func(a *service.Agent) error {
		a.Export("multiply", func(x, y int) int { return x * y })
		a.Export("divide", func(x, y int) (int, error) {
			if y == 0 {
				return 0, service.Fail(100, "division by zero", fmt.Sprintf("%d/0", x))
			}
			return x / y, nil
		})
		return nil
	}))

	_, err = rt.Call(ctx, service.Name("math"), "multiply", 1, 2, 3)
	var f *service.Failure
	if errors.As(err, &f) {
		fmt.Println(int(f.Code), f.Code, "-", f.Details)
	}
	_, err = rt.Call(ctx, service.Name("math"), "divide", 7, 0)
	fmt.Println(err)
	_, err = rt.Call(ctx, service.Name("physics"), "g")
	fmt.Println(errors.Is(err, service.ErrNoSuchService))
	// Output:
	// 56 bad arguments - multiply: expected 2 arguments, received 3
	// math: division by zero (100): 7/0
	// true
}

// Rule 19's patterns: "*" is one word, ">" one or more at the end, and
// shell-style "*" and "?" work inside a word.
func ExamplePattern_Match() {
	for _, p := range []string{"prices.*", "prices.>", "pri*.ibm", "pr?ces.ibm", "*", ">"} {
		pt := service.MustCompilePattern(p)
		fmt.Printf("%-10s %-5v %-5v %v\n", p, pt.Match("prices.ibm"), pt.Match("prices.nyse.ibm"), pt.Match("ibm"))
	}
	// Output:
	// prices.*   true  false false
	// prices.>   true  true  false
	// pri*.ibm   true  false false
	// pr?ces.ibm true  false false
	// *          false false true
	// >          true  true  true
}

// One-way messages go to a handler the receiver registered for the
// sender and message id.
func ExampleAgent_SendMessage() {
	ctx := context.Background()
	rt, err := service.NewRuntime(service.Config{})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	got := make(chan service.Message, 1)
	_, _ = rt.Start(ctx, "log", service.SetupFunc(func(a *service.Agent) error {
		a.HandleMessages(service.Name("app"), "line", func(m service.Message) { got <- m })
		return nil
	}))
	_, _ = rt.Start(ctx, "app", service.SetupFunc(func(a *service.Agent) error {
		a.Export("work", func() error {
			return a.SendMessage(service.Name("log"), "line", "a log line", "started", 1)
		})
		return nil
	}))
	// The log knows "app" by name once it is listed, after its Setup:
	// the app sends from a handler.
	if _, err := rt.Call(ctx, service.Name("app"), "work"); err != nil {
		panic(err)
	}
	m := <-got
	var text string
	_ = m.Decode(&text)
	fmt.Println(m.ID, m.Description, m.Sequence, text)
	// Output: line a log line 1 started
}

// Runtime.Watch follows the registry from outside any service.
func ExampleRuntime_Watch() {
	ctx := context.Background()
	rt, err := service.NewRuntime(service.Config{})
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	events := make(chan service.RegistryEvent, 10)
	stop, err := rt.Watch(ctx, service.Name("db"), func(ev service.RegistryEvent) { events <- ev })
	if err != nil {
		panic(err)
	}
	defer stop.Cancel()
	addr, _ := rt.Start(ctx, "db", service.SetupFunc(func(*service.Agent) error { return nil }))
	_ = rt.StopService(ctx, addr)
	fmt.Println((<-events).Kind, (<-events).Kind)
	// Output: available withdrawn
}

// A handler's context has its caller's deadline and ends when the caller
// gives up; calls made with it inherit the deadline.
func ExampleRequest_Deadline() {
	ctx := context.Background()
	rt, _ := service.NewRuntime(service.Config{Node: "example"})
	defer rt.Close(ctx)
	stopped := make(chan error, 1)
	rt.Start(ctx, "slow", service.SetupFunc(func(a *service.Agent) error {
		a.Export("work", func(ctx context.Context) (string, error) {
			dl, ok := ctx.Deadline()
			fmt.Println("the handler has the caller's deadline:", ok && time.Until(dl) <= 300*time.Millisecond)
			select {
			case <-time.After(10 * time.Second): // work the caller will not wait for
				return "done", nil
			case <-ctx.Done():
				stopped <- ctx.Err()
				return "", ctx.Err()
			}
		})
		return nil
	}))
	call, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err := rt.Call(call, service.Name("slow"), "work")
	fmt.Println("the caller:", errors.Is(err, service.ErrTimedOut) || errors.Is(err, service.ErrHandlerError))
	fmt.Println("the handler stopped:", <-stopped)
	// Output:
	// the handler has the caller's deadline: true
	// the caller: true
	// the handler stopped: context deadline exceeded
}

// A call to a service group goes to one of its members, taking turns.
func ExampleGroup() {
	ctx := context.Background()
	rt, _ := service.NewRuntime(service.Config{Node: "example"})
	defer rt.Close(ctx)
	for _, name := range []string{"web-1", "web-2"} {
		rt.Start(ctx, name, service.SetupFunc(func(a *service.Agent) error {
			a.Export("who", func() string { return name })
			return nil
		}), service.Groups("web"))
	}
	for range 4 {
		who, _ := service.CallFor[string](ctx, rt, service.Group("web"), "who")
		fmt.Println(who)
	}
	// Output:
	// web-1
	// web-2
	// web-1
	// web-2
}

// A service that must never serve state a panic left half-updated
// restarts: Setup runs again, at the same address.
func ExampleOnPanic() {
	ctx := context.Background()
	rt, _ := service.NewRuntime(service.Config{Node: "example", Logger: slog.New(slog.DiscardHandler)})
	defer rt.Close(ctx)
	rt.Start(ctx, "ledger", service.SetupFunc(func(a *service.Agent) error {
		balance := 100 // fresh at every (re)start
		a.Export("withdraw", func(n int) int {
			balance -= n
			if balance < 0 {
				panic("overdrawn") // balance is now wrong: start again
			}
			return balance
		})
		return nil
	}), service.OnPanic(service.RestartOnPanic))
	for _, n := range []int{30, 90, 30} {
		balance, err := service.CallFor[int](ctx, rt, service.Name("ledger"), "withdraw", n)
		if err != nil {
			fmt.Println("failed with code", int(service.AsFailure(err).Code))
			continue
		}
		fmt.Println(balance)
	}
	// Output:
	// 70
	// failed with code 57
	// 70
}
