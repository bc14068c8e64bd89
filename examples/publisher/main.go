// Command publisher is a client process hosting the service "seed", which
// publishes reports (OSE's "publish" demo with its "seed" service):
//
//   - once at start, "init" {time}, kept with lifetime service.Forever: a
//     subscriber arriving at any later time receives it first;
//   - every --interval, "next" {count, value, time}, not kept: only the
//     subscribers present at that moment receive it.
//
// Reports go only to subscribers, so the service also asks to be told of
// subscribers coming and going (OnSubscription) and logs them.
//
// Each in a terminal of its own:
//
//	go run ./examples/exchange --listen 127.0.0.1:11111
//	go run ./examples/publisher --server 127.0.0.1:11111
//	go run ./examples/subscriber --server 127.0.0.1:11111
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/service"
)

// The report values. Values are encoded with CBOR; the cbor tags name
// the fields as subscribers see them.
type initReport struct {
	Time time.Time `cbor:"time"`
}

type nextReport struct {
	Count int       `cbor:"count"`
	Value int64     `cbor:"value"`
	Time  time.Time `cbor:"time"`
}

func main() {
	if err := run(); err != nil && !errors.Is(err, context.Canceled) { // Ctrl-C before linked is no failure
		fmt.Fprintln(os.Stderr, "publisher:", err)
		os.Exit(1)
	}
}

func run() error {
	server := flag.String("server", "127.0.0.1:11111", "the exchange server `HOST:PORT` to link to")
	group := flag.String("group", "", "the server's exchange `GROUP`")
	interval := flag.Duration("interval", time.Second, "how often to publish next")
	flag.Parse()
	if *interval <= 0 {
		return fmt.Errorf("--interval must be positive, got %v", *interval)
	}

	// Connect waits for the server: Ctrl-C must end that wait too.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	libLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	n, err := node.Connect(ctx, node.Config{Name: "publisher", Servers: []string{*server}, Group: *group, Retry: time.Second, Logger: libLog})
	if err != nil {
		return err
	}
	log.Info("linked to the exchange server", "server", *server)

	seed := service.SetupFunc(func(a *service.Agent) error {
		// Subscribers coming and going. A subscriber's process going away
		// counts as going too.
		a.OnSubscription(func(ev service.SubscriptionEvent) {
			if ctx.Err() != nil {
				return // stopping: every remote subscriber goes away
			}
			if ev.Subscribed {
				log.Info("subscriber came", "subscriber", ev.Subscriber.String(), "pattern", ev.Pattern)
			} else {
				log.Info("subscriber went", "subscriber", ev.Subscriber.String(), "pattern", ev.Pattern)
			}
		})
		// A timer firing inside the service: no locks around count.
		count := 0
		a.Every(*interval, func() {
			count++
			err := a.Publish("next", nextReport{Count: count, Value: rand.Int64N(1000), Time: time.Now().UTC()})
			if err != nil { // e.g. overloaded: a slow subscriber's oldest reports were dropped
				log.Warn("publish next", "error", err)
			}
		})
		return a.PublishRetained("init", initReport{Time: time.Now().UTC()}, service.Forever)
	})
	if _, err := n.Runtime().Start(ctx, "seed", seed); err != nil {
		n.Close()
		return err
	}
	log.Info("service seed publishing", "interval", *interval, "server", *server)
	return n.Run(ctx) // until Ctrl-C or SIGTERM, then drain and stop
}
