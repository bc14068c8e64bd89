package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netsvc-go/netsvc/actors/connection"
	"github.com/netsvc-go/netsvc/actors/exchange"
	"github.com/netsvc-go/netsvc/actors/node"
	"github.com/netsvc-go/netsvc/actors/node/nodetest"
	"github.com/netsvc-go/netsvc/actors/registry"
	"github.com/netsvc-go/netsvc/service"
)

// Regression tests for bugs found in other packages while writing the
// command, all fixed since; each comment describes the bug as it was.

// waitLinked relies on Node.WaitSynced seeing the link-up "synced" mark
// even when it arrives in the same read as the server's hello (it used
// to overtake the handshake and be dropped, fixed in 9c695aa).
func TestWaitSyncedWhenDumpArrivesWithHello(t *testing.T) {
	// A server whose (empty) link-up dump reaches the client right after
	// the handshake, before the client's exchange has activated the link.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				if _, err := connection.Handshake(nc, connection.HandshakeConfig{Local: connection.Hello{Protocol: connection.Protocol,
					Process: registry.NewProcessID(), Node: "fake", Role: registry.RoleServer}}); err != nil {
					return
				}
				// The (empty) dump right away, before the client's own.
				nc.Write(connection.AppendSynced(nil))
				buf := make([]byte, 512)
				for {
					if _, err := nc.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	for i := 0; i < 20; i++ {
		c, err := node.Start(context.Background(), node.Config{Name: "c", Exchanges: []exchange.Config{node.Client("", ln.Addr().String())}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = c.WaitSynced(ctx)
		cancel()
		links := c.Links()
		stopNode(c)
		if err != nil {
			t.Fatalf("start %d: %v; links %+v", i, err, links)
		}
	}
}

// Both ends check the other's hello (group, protocol, token) and either
// may read the other's first. When the dialling side is the one that
// finds the mismatch, its target is not marked "rejected": it redials
// every retry delay forever, although retrying cannot help (DESIGN: "the
// dialer ... retries after its delay only if retrying can help"), and
// which of the two behaviours a user sees is a race.
func TestBugDiallerRefusalIsNotRejected(t *testing.T) {
	srv := startServer(t, "a", "", false)
	for i := 0; i < 10; i++ {
		xc := node.Client("other", srv.Addr())
		xc.Retry = 5 * time.Second
		c, err := node.Start(context.Background(), node.Config{Name: "c", Exchanges: []exchange.Config{xc}})
		if err != nil {
			t.Fatal(err)
		}
		var last []exchange.TargetStatus
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			last = c.Exchanges()[0].Targets()
			if len(last) == 1 && last[0].State == "rejected" {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		stopNode(c)
		if len(last) != 1 || last[0].State != "rejected" {
			t.Fatalf("attempt %d: target %+v, want rejected", i, last)
		}
	}
}

// rule 4: a refused client gets "a clear reason on both sides".
// The server logs a refused hello (or a reject it received) at debug
// level only ("link closed"), so a node at the default info level says
// nothing about a client of the wrong group.
func TestBugServerDoesNotLogRefusal(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := node.Start(context.Background(), node.Config{Name: "a", Logger: log,
		Exchanges: []exchange.Config{node.Server("", "127.0.0.1:0")}})
	if err != nil {
		t.Fatal(err)
	}
	defer stopNode(srv)
	r := runCmd(context.Background(), "call", "--server", srv.Addr(), "--group", "other", "math", "multiply", "6", "7")
	if r.code != 1 {
		t.Fatal(r)
	}
	nodetest.WaitFor(t, 2*time.Second, func() error {
		if !strings.Contains(logs.String(), "mismatch") {
			return fmt.Errorf("the server logged nothing about the refused client:\n%s", logs.String())
		}
		return nil
	})
}

// Node.Stop says "bye on every link", but the exchange's Stopping handler
// only sends connection.Close to its links as a user message while
// protoactor stops the children (system messages first): each link
// closes with reason "stopped" without a bye, and the peer sees a plain
// EOF ("peer closed the link") instead of the reason.
func TestBugStopSaysNoBye(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := node.Start(context.Background(), node.Config{Name: "a", Logger: log,
		Exchanges: []exchange.Config{node.Server("", "127.0.0.1:0")}})
	if err != nil {
		t.Fatal(err)
	}
	defer stopNode(srv)
	c, err := startClient(context.Background(), "test", &clientFlags{server: srv.Addr(), timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	stopNode(c)
	nodetest.WaitFor(t, 2*time.Second, func() error {
		if !strings.Contains(logs.String(), `msg="link down"`) {
			return fmt.Errorf("no link down yet")
		}
		return nil
	})
	if !strings.Contains(logs.String(), "peer closed the link: node ") || !strings.Contains(logs.String(), " stopping") {
		t.Fatalf("the server did not get the client's bye reason:\n%s", logs.String())
	}
}

// Node.Stop does not let a link write what is queued on it: the link
// closes with its queue dropped (reports counted as dropped), so reports
// published just before Stop are lost although the link was healthy.
// "netsvc publish" waits for Node.Links() to show 0 queued bytes first.
func TestBugStopDropsQueuedReports(t *testing.T) {
	srv := startServer(t, "a", "", false)
	sub, err := startClient(context.Background(), "sub", &clientFlags{server: srv.Addr(), timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer stopNode(sub)
	var got atomic.Int64
	if _, err := sub.Runtime().Start(context.Background(), "", service.SetupFunc(func(a *service.Agent) error {
		_, err := a.Subscribe(service.Name("burst"), "r", func(service.Report) { got.Add(1) })
		return err
	})); err != nil {
		t.Fatal(err)
	}
	const reports = 40 // 640 KiB: under the link's soft limit, so none is dropped for congestion
	for attempt := 0; attempt < 20; attempt++ {
		got.Store(0)
		pub, err := startClient(context.Background(), "pub", &clientFlags{server: srv.Addr(), timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		subscribed := make(chan struct{})
		done := make(chan struct{})
		if _, err := pub.Runtime().Start(context.Background(), "burst", service.SetupFunc(func(a *service.Agent) error {
			a.OnSubscription(func(service.SubscriptionEvent) { close(subscribed) })
			a.Export("go", func() {
				for i := 0; i < reports; i++ {
					_ = a.Publish("r", make([]byte, 16<<10))
				}
				close(done)
			})
			return nil
		})); err != nil {
			t.Fatal(err)
		}
		<-subscribed
		go pub.Runtime().Call(context.Background(), service.Name("burst"), "go")
		<-done
		var dropped uint64
		for _, l := range pub.Links() {
			dropped += l.Dropped
		}
		if dropped != 0 {
			t.Fatalf("%d reports dropped before the stop", dropped)
		}
		stopNode(pub)
		deadline := time.Now().Add(time.Second)
		for got.Load() < reports && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := got.Load(); n != reports {
			t.Fatalf("attempt %d: the subscriber got %d of %d reports published before a graceful stop", attempt, n, reports)
		}
	}
}

// Payload.Value promises "a generic Go value ... handy for printing or
// converting to JSON" but fails on a map with non-string keys (the
// decoder's DefaultMapType is map[string]any), e.g. a handler returning
// map[int]string. payloadValue falls back to decoding into map[any]any.
func TestBugPayloadValueNonStringKeys(t *testing.T) {
	p, err := service.Encode(map[int]string{1: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.Value(); err != nil {
		t.Fatalf("Value: %v, %v", v, err)
	}
}

// The runtime means to pass only protoactor's warnings to the logger
// (warnOnly), but it adds an attribute with .With("lib", "protoactor"),
// and warnOnly does not wrap WithAttrs: the handler it returns is the
// plain one, so protoactor's info lines ("actor system started") reach
// the log. Every "netsvc node" start shows one.
func TestBugProtoactorInfoLinesLeak(t *testing.T) {
	var logs syncBuffer
	rt, err := service.NewRuntime(service.Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	if strings.Contains(logs.String(), "lib=protoactor") {
		t.Fatalf("protoactor info lines in the log:\n%s", logs.String())
	}
}
