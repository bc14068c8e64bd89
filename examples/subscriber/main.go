// Command subscriber prints the reports of a service, by name (OSE's
// "subscribe" demo): one line per report, "SERVICE SUBJECT VALUE" with the
// value as JSON, and a line when a publisher of that name appears or is
// withdrawn.
//
// A subscription by name follows every service of that name, those there
// now and those that appear later, so the subscriber and the publisher may
// start in any order. Reports a publisher kept (like seed's "init") come
// first, then live ones.
//
// --pattern selects subjects: words separated by dots, where "*" matches
// exactly one word and ">" at the end one or more words ("prices.*"
// matches prices.ibm, not prices.nyse.ibm; "prices.>" both). The default
// "*" takes every one-word subject, like seed's "init" and "next".
//
// Each in a terminal of its own:
//
//	go run ./examples/exchange --listen 127.0.0.1:11111
//	go run ./examples/publisher --server 127.0.0.1:11111
//	go run ./examples/subscriber --server 127.0.0.1:11111 --count 5
//
// Behind the bridge (see examples/bridge), subscribe to SEED instead:
//
//	go run ./examples/subscriber --server 127.0.0.1:11111 --service SEED
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "subscriber:", err)
		os.Exit(1)
	}
}

func run() error {
	server := flag.String("server", "127.0.0.1:11111", "the exchange server `HOST:PORT` to link to")
	group := flag.String("group", "", "the server's exchange `GROUP`")
	name := flag.String("service", "seed", "the `NAME` of the services to subscribe to")
	pattern := flag.String("pattern", "*", "the subject `PATTERN`: * matches one word, > at the end the rest")
	count := flag.Int("count", 0, "exit after `N` reports (0: run until interrupted)")
	flag.Parse()
	if _, err := service.CompilePattern(*pattern); err != nil {
		return err
	}
	if *count < 0 {
		return fmt.Errorf("--count must not be negative, got %d", *count)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	libLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// The server is dialled below, once the link watch is in place, so
	// that the first link going up is not missed.
	xc := node.Client(*group)
	xc.Retry = time.Second
	n, err := node.Start(ctx, node.Config{Name: "subscriber", Exchanges: []exchange.Config{xc}, Logger: libLog})
	if err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Stop(stopCtx)
	}()
	n.Exchange(*group).WatchLinks(func(ev exchange.LinkEvent) {
		switch {
		case ev.Synced || ctx.Err() != nil:
		case ev.Active:
			log.Info("linked to the exchange server", "server", ev.Link.PeerAddress)
		default:
			log.Warn("link to the exchange server lost; redialling", "reason", ev.Reason)
		}
	})
	n.Exchange(*group).Dial(*server)

	// The subscriber is an anonymous service (empty name): it is never
	// listed, but it can subscribe. Its callbacks run one at a time inside
	// its actor, so got needs no lock.
	done := make(chan struct{})
	got := 0
	_, err = n.Runtime().Start(ctx, "", service.SetupFunc(func(a *service.Agent) error {
		onReport := func(r service.Report) {
			if ctx.Err() != nil || (*count > 0 && got == *count) {
				return // done or interrupted: the process is exiting
			}
			value, err := registry.PayloadJSON(r.Payload)
			if err != nil {
				value = []byte(fmt.Sprintf("(undecodable: %v)", err))
			}
			fmt.Printf("%s %s %s\n", r.PublisherName, r.Subject, value)
			if got++; got == *count {
				close(done)
			}
		}
		onPublisher := func(ev service.PublisherEvent) {
			if ctx.Err() != nil || (*count > 0 && got == *count) {
				return // stopping withdraws every remote binding: not news
			}
			state := "withdrawn"
			if ev.Available {
				state = "appeared"
			}
			fmt.Printf("publisher %s %s (node %s, address %s)\n", ev.Publisher.Name, state, ev.Publisher.Node, ev.Publisher.Address)
		}
		_, err := a.Subscribe(service.Name(*name), *pattern, onReport, service.OnPublisher(onPublisher))
		return err
	}))
	if err != nil {
		return err
	}
	log.Info("subscribed", "service", *name, "pattern", *pattern, "server", *server)

	select {
	case <-done:
	case <-ctx.Done():
	}
	stop() // cancels ctx too: the callbacks go quiet while the node stops
	return nil
}
