// Command inprocess runs a math service and a client service in one
// process: a call, a late subscriber receiving a retained report, and a
// registry watch seeing a service come and go.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/netsvc-go/netsvc/service"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "inprocess:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt, err := service.NewRuntime(service.Config{Node: "inprocess"})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	// A registry watch, started first, sees everything that follows.
	events := make(chan service.RegistryEvent, 16)
	stopWatch, err := rt.Watch(ctx, service.Name("math"), func(ev service.RegistryEvent) { events <- ev })
	if err != nil {
		return err
	}
	defer stopWatch.Cancel()

	// The math service publishes a retained "status" report at start.
	mathAddr, err := rt.Start(ctx, "math", service.SetupFunc(func(a *service.Agent) error {
		a.Export("multiply", func(x, y int) int { return x * y })
		return a.PublishRetained("status", "ready", service.Forever)
	}), service.Groups("web-services"))
	if err != nil {
		return err
	}
	fmt.Println(<-events)

	// The client service calls math from its own actor, asynchronously.
	answer := make(chan string, 1)
	_, err = rt.Start(ctx, "client", service.SetupFunc(func(a *service.Agent) error {
		a.Request(service.Name("math"), "multiply", 6, 7).Then(func(res service.Payload, err error) {
			var v int
			if err == nil {
				err = res.Decode(&v)
			}
			if err != nil {
				answer <- "error: " + err.Error()
				return
			}
			answer <- fmt.Sprintf("6 * 7 = %d", v)
		})
		return nil
	}))
	if err != nil {
		return err
	}
	fmt.Println(<-answer)

	// A subscriber arriving after the report was published still gets it.
	status := make(chan string, 1)
	_, err = rt.Start(ctx, "late-subscriber", service.SetupFunc(func(a *service.Agent) error {
		_, err := a.Subscribe(service.Name("math"), "status", func(r service.Report) {
			var s string
			_ = r.Decode(&s)
			status <- fmt.Sprintf("late subscriber got retained %s=%q from %s", r.Subject, s, r.PublisherName)
		})
		return err
	}))
	if err != nil {
		return err
	}
	fmt.Println(<-status)

	if err := rt.StopService(ctx, mathAddr); err != nil {
		return err
	}
	fmt.Println(<-events)
	return nil
}
