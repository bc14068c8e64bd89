// Command backend-seed is a publisher of the "backend" exchange group
// (OSE's "publish-backend" demo): a client process linked to a server of
// group "backend", hosting "BACKEND:SEED" with audience "backend". Like
// examples/publisher it publishes a kept "init" {time} at start and
// "next" {count, value, time} every --interval.
//
// Audience "backend" means: exported only through exchange endpoints of
// group "backend". Processes of the default group never see this
// service, not even through a process linked to both groups (see
// examples/bridge, which republishes its reports to the front).
//
// Each in a terminal of its own (the full bridge setup is in
// examples/README.md):
//
//	go run ./examples/exchange --listen 127.0.0.1:11112 --group backend
//	go run ./examples/backend-seed --server 127.0.0.1:11112
//
// A subscriber of the backend group sees it directly:
//
//	go run ./examples/subscriber --server 127.0.0.1:11112 --group backend --service BACKEND:SEED
//
// Several backend-seed processes may run at once: a subscription by name
// gets the reports of all of them.
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

func main() {
	if err := run(); err != nil && !errors.Is(err, context.Canceled) { // Ctrl-C before linked is no failure
		fmt.Fprintln(os.Stderr, "backend-seed:", err)
		os.Exit(1)
	}
}

func run() error {
	server := flag.String("server", "127.0.0.1:11112", "the backend exchange server `HOST:PORT` to link to")
	group := flag.String("group", "backend", "the exchange `GROUP` of the server, and the service's audience")
	name := flag.String("name", "BACKEND:SEED", "the service `NAME`")
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

	// A client of group "backend": a server of another group refuses it,
	// and Connect returns the server's reason.
	n, err := node.Connect(ctx, node.Config{Name: "backend-seed", Servers: []string{*server}, Group: *group, Retry: time.Second, Logger: libLog})
	if err != nil {
		return err
	}
	log.Info("linked to the backend exchange server", "server", *server, "group", *group)

	seed := service.SetupFunc(func(a *service.Agent) error {
		a.OnSubscription(func(ev service.SubscriptionEvent) {
			if ctx.Err() != nil {
				return // stopping: every remote subscriber goes away
			}
			log.Info("subscriber", "subscribed", ev.Subscribed, "subscriber", ev.Subscriber.String(), "pattern", ev.Pattern)
		})
		count := 0
		a.Every(*interval, func() {
			count++
			next := map[string]any{"count": count, "value": rand.Int64N(1000), "time": time.Now().UTC()}
			if err := a.Publish("next", next); err != nil {
				log.Warn("publish next", "error", err)
			}
		})
		return a.PublishRetained("init", map[string]any{"time": time.Now().UTC()}, service.Forever)
	})
	if _, err := n.Runtime().Start(ctx, *name, seed, service.Audience(*group)); err != nil {
		n.Close()
		return err
	}
	log.Info("service publishing", "service", *name, "audience", *group, "interval", *interval)
	return n.Run(ctx) // until Ctrl-C or SIGTERM, then drain and stop
}
