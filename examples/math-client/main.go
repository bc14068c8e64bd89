// Command math-client calls the "math" service of examples/math-server
// from another process (OSE's "request" demo): it waits until math is
// visible with a registry watch, calls multiply(6, 7) and prints
// "6 * 7 = 42". Then, to show the other way of calling, a service of its
// own sends add(6, 7) with Request(...).Then, which does not block the
// service: the answer comes back into the service's actor as a callback.
// It exits 0, or 1 with the failure on stderr.
//
// Each in a terminal of its own:
//
//	go run ./examples/exchange --listen 127.0.0.1:11111
//	go run ./examples/math-server --server 127.0.0.1:11111
//	go run ./examples/math-client --server 127.0.0.1:11111
//
// Started before math-server, it waits for it (up to --timeout).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/service"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "math-client:", err)
		os.Exit(1)
	}
}

func run() error {
	server := flag.String("server", "127.0.0.1:11111", "the exchange server `HOST:PORT` to link to")
	group := flag.String("group", "", "the server's exchange `GROUP`")
	timeout := flag.Duration("timeout", 10*time.Second, "give up when math is not there and answering within this long")
	flag.Parse()

	interrupted, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(interrupted, *timeout)
	defer cancel()
	libLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// Linked and synced, or the reason the server could not be linked to.
	n, err := node.Connect(ctx, node.Config{Name: "math-client", Servers: []string{*server}, Group: *group,
		Retry: 500 * time.Millisecond, Logger: libLog})
	if err != nil {
		return err
	}
	defer n.Stop(context.Background())
	rt := n.Runtime()

	// 1. Wait for math with a registry watch: it tells of the math
	// services already known, then of each one appearing, so there is
	// no race with math-server starting (and no sleep).
	found := make(chan struct{}, 1)
	stopWatch, err := rt.Watch(ctx, service.Name("math"), func(ev service.RegistryEvent) {
		if ev.Kind == service.Available {
			select {
			case found <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		return err
	}
	defer stopWatch.Cancel()
	select {
	case <-found:
	case <-ctx.Done():
		if interrupted.Err() != nil {
			return errors.New("interrupted while waiting for math")
		}
		return fmt.Errorf("no service math within %v (linked to %s: is math-server running?)", *timeout, *server)
	}

	// 2. A synchronous call from the main goroutine: Call blocks until the
	// answer, a failure, or ctx's deadline. CallFor decodes the result.
	product, err := service.CallFor[int](ctx, rt, service.Name("math"), "multiply", 6, 7)
	if err != nil {
		return fmt.Errorf("multiply: %w", err) // a *service.Failure: code, description, details
	}
	fmt.Printf("6 * 7 = %d\n", product)

	// 3. An asynchronous call from inside a service. Request returns at
	// once; Then's callback runs later inside this service's actor, like
	// every handler of the service. The service is anonymous (empty
	// name): it calls but is never listed.
	answer := make(chan error, 1)
	if _, err := rt.Start(ctx, "", service.SetupFunc(func(a *service.Agent) error {
		a.Request(service.Name("math"), "add", 6, 7).Timeout(*timeout).Then(func(res service.Payload, err error) {
			var sum int
			if err == nil {
				err = res.Decode(&sum)
			}
			if err == nil {
				fmt.Printf("6 + 7 = %d\n", sum)
			}
			answer <- err
		})
		return nil // Setup returns at once; the answer comes later
	})); err != nil {
		return err
	}
	select {
	case err := <-answer:
		if err != nil {
			return fmt.Errorf("add: %w", err)
		}
		return nil
	case <-ctx.Done():
		return errors.New("add: no answer")
	}
}
