// Command math-server is a client process hosting the service "math"
// (OSE's "reply" demo): it links to an exchange server and exports
// multiply(x, y) and add(x, y) to every process of the exchange network.
//
// The service has audience "*" (the default: exported through every
// exchange endpoint of its process) and joins the service group
// "web-services", so a watcher of that group, or an HTTP gateway serving
// it, finds it too.
//
// Run an exchange server, then this, then a caller, each in a terminal:
//
//	go run ./examples/exchange --listen 127.0.0.1:11111
//	go run ./examples/math-server --server 127.0.0.1:11111
//	go run ./examples/math-client --server 127.0.0.1:11111
//
// The server may start in any order: math-server waits for it, redialling
// every --retry, and starts math once linked. A server refusing it
// (another exchange group, say) ends it with the server's reason.
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
	if err := run(); err != nil && !errors.Is(err, context.Canceled) { // Ctrl-C before linked is no failure
		fmt.Fprintln(os.Stderr, "math-server:", err)
		os.Exit(1)
	}
}

func run() error {
	server := flag.String("server", "127.0.0.1:11111", "the exchange server `HOST:PORT` to link to")
	group := flag.String("group", "", "the server's exchange `GROUP`")
	retry := flag.Duration("retry", time.Second, "how soon to redial the server when it cannot be reached")
	flag.Parse()

	// Connect waits for the server: Ctrl-C must end that wait too.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	libLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// A client process, linked to the server (redialled every --retry
	// until it answers, and again whenever the link drops).
	n, err := node.Connect(ctx, node.Config{Name: "math-server", Servers: []string{*server}, Group: *group, Retry: *retry, Logger: libLog})
	if err != nil {
		return err
	}
	log.Info("linked to the exchange server", "server", *server)

	// The service. Setup runs once inside the service's actor; every
	// exported method then runs there too, one call at a time, so a
	// service's own state needs no locks. Arguments and results are plain
	// Go values, moved between processes by the codec (CBOR).
	math := service.SetupFunc(func(a *service.Agent) error {
		a.Export("multiply", func(x, y int) int { return x * y })
		a.Export("add", func(x, y int) int { return x + y })
		return nil
	})
	if _, err := n.Runtime().Start(ctx, "math", math,
		service.Audience("*"), // the default, spelled out: visible to every process
		service.Groups("web-services")); err != nil {
		n.Close()
		return err
	}
	log.Info("service math started", "methods", "multiply add", "server", *server)
	return n.Run(ctx) // until Ctrl-C or SIGTERM; the drain withdraws math everywhere, then lets calls running finish
}
