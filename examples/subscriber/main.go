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
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

func main() {
	if err := run(); err != nil && !errors.Is(err, context.Canceled) { // Ctrl-C before linked is no failure
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

	// Connect waits for the server: Ctrl-C must end that wait too.
	interrupted, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	libLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	n, err := node.Connect(interrupted, node.Config{Name: "subscriber", Servers: []string{*server}, Group: *group, Retry: time.Second, Logger: libLog})
	if err != nil {
		return err
	}
	log.Info("linked to the exchange server", "server", *server)

	// ctx ends at Ctrl-C or after --count reports; the callbacks go quiet
	// then, as stopping withdraws every remote binding: not news.
	ctx, done := context.WithCancel(interrupted)
	defer done()
	// The subscriber is an anonymous service (empty name): it is never
	// listed, but it can subscribe. Its callbacks run one at a time inside
	// its actor, so got needs no lock.
	got := 0
	_, err = n.Runtime().Start(ctx, "", service.SetupFunc(func(a *service.Agent) error {
		onReport := func(r service.Report) {
			if ctx.Err() != nil {
				return
			}
			value, err := registry.PayloadJSON(r.Payload)
			if err != nil {
				value = []byte(fmt.Sprintf("(undecodable: %v)", err))
			}
			fmt.Printf("%s %s %s\n", r.PublisherName, r.Subject, value)
			if got++; got == *count {
				done()
			}
		}
		onPublisher := func(ev service.PublisherEvent) {
			if ctx.Err() != nil {
				return
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
		n.Close()
		return err
	}
	log.Info("subscribed", "service", *name, "pattern", *pattern, "server", *server)
	return n.Run(ctx) // until Ctrl-C, SIGTERM or --count reports, then drain and stop
}
