// Command bridge links two exchange groups in one process and republishes
// the backend's reports to the front (OSE's "publish-frontend" demo,
// rule 5):
//
//	 front: exchange group ""                back: exchange group "backend"
//	┌────────────────────┐   ┌────────┐   ┌───────────────────────────┐
//	│ exchange :11111    │◀──│ bridge │──▶│ exchange :11112 (backend) │
//	│   ▲                │   │  SEED  │   │   ▲                       │
//	│ subscriber (SEED)  │   └────────┘   │ backend-seed (BACKEND:SEED│
//	└────────────────────┘                │   audience "backend")     │
//	                                      └───────────────────────────┘
//
// The bridge has two client endpoints: one in the default group, linked
// to a server of group "", and one in group "backend", linked to a server
// of group "backend". Its service SEED (audience "*") subscribes to the
// reports of BACKEND:SEED and publishes each again under its own name.
//
// Why a service, rather than the bridge passing BACKEND:SEED on? A
// process has one registry, so the bridge itself sees BACKEND:SEED. But
// each endpoint exports a binding only if its audience allows it: "*"
// goes through every endpoint, "" through none, any other audience only
// through endpoints of that exchange group. BACKEND:SEED has audience
// "backend", so the bridge's front endpoint (group "") never announces
// it: the front cannot see, call or subscribe to it. A backend service
// with audience "*", on the other hand, would be re-exported to the front
// by the bridge as if it were the bridge's own (and the front's "*"
// services to the backend): a binding is only kept from going back into
// the group it came from. Audience "backend" keeps the backend private;
// SEED is the one window the bridge opens on purpose. SEED has audience
// "*", so the backend's processes see it too.
//
// Each in a terminal of its own:
//
//	go run ./examples/exchange --listen 127.0.0.1:11111
//	go run ./examples/exchange --listen 127.0.0.1:11112 --group backend
//	go run ./examples/backend-seed --server 127.0.0.1:11112
//	go run ./examples/bridge --front 127.0.0.1:11111 --backend 127.0.0.1:11112
//	go run ./examples/subscriber --server 127.0.0.1:11111 --service SEED
//
// A subscriber on the front asking for BACKEND:SEED itself gets nothing:
//
//	go run ./examples/subscriber --server 127.0.0.1:11111 --service BACKEND:SEED
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

	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/service"
)

func main() {
	if err := run(); err != nil && !errors.Is(err, context.Canceled) { // Ctrl-C before linked is no failure
		fmt.Fprintln(os.Stderr, "bridge:", err)
		os.Exit(1)
	}
}

func run() error {
	front := flag.String("front", "127.0.0.1:11111", "the front exchange server `HOST:PORT`, of the default group")
	backend := flag.String("backend", "127.0.0.1:11112", "the backend exchange server `HOST:PORT`")
	backendGroup := flag.String("backend-group", "backend", "the backend's exchange `GROUP`")
	from := flag.String("from", "BACKEND:SEED", "the backend publisher `NAME` to subscribe to")
	as := flag.String("as", "SEED", "the `NAME` to republish its reports as, on the front")
	flag.Parse()
	if *backendGroup == "" {
		return fmt.Errorf("--backend-group must not be the default group \"\"")
	}

	// Connect waits for both servers: Ctrl-C must end that wait too.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	libLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// Two client endpoints, one per exchange group: that makes this
	// process a bridge. The front one is the node's own (Servers); the
	// backend one is an extra endpoint, which takes none of Config's
	// endpoint settings, so it gets its own Retry. Connect returns once
	// both links are synced.
	back := node.Client(*backendGroup, *backend)
	back.Retry = time.Second
	n, err := node.Connect(ctx, node.Config{Name: "bridge", Servers: []string{*front}, Retry: time.Second,
		Exchanges: []exchange.Config{back}, Logger: libLog})
	if err != nil {
		return err
	}

	seed := service.SetupFunc(func(a *service.Agent) error {
		// ">" matches every subject. Each report is published again with
		// the same subject and the same encoded value: a service.Raw
		// passes the payload through without decoding it.
		republish := func(r service.Report) {
			raw := service.Raw{ContentType: r.ContentType, Data: r.Data}
			var err error
			if r.Subject == "init" {
				// The backend keeps "init" for late subscribers; keep it
				// here too, so a late front subscriber gets it first.
				err = a.PublishRetained(r.Subject, raw, service.Forever)
			} else {
				err = a.Publish(r.Subject, raw)
			}
			if err != nil {
				log.Warn("republish", "subject", r.Subject, "error", err)
			}
		}
		onPublisher := func(ev service.PublisherEvent) {
			if ctx.Err() == nil {
				log.Info("backend publisher", "service", ev.Publisher.Name, "available", ev.Available, "node", ev.Publisher.Node)
			}
		}
		_, err := a.Subscribe(service.Name(*from), ">", republish, service.OnPublisher(onPublisher))
		return err
	})
	if _, err := n.Runtime().Start(ctx, *as, seed, service.Audience("*")); err != nil {
		n.Close()
		return err
	}
	log.Info("bridging", "from", *from, "backend", *backend, "backend_group", *backendGroup, "as", *as, "front", *front)
	return n.Run(ctx) // until Ctrl-C or SIGTERM, then drain and stop
}
